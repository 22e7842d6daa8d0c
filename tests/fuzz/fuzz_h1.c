/*
 * tests/fuzz/fuzz_h1.c - bytes from a client through the HTTP/1.1 front end
 * (proxy/h1_server.c on http_parser), request building (proxy/req.c, headers.c), the whole
 * filter chain (route, authenticate, validate, authorise, batch; audit is off, so its filter
 * passes) and the upstream client up to its failed connect; the answers go back through the
 * same front end.
 *
 * Input: one control byte (tests/fuzz/front_harness.h: how the input is cut into reads and
 * how the connection ends), then the bytes of the connection. The setup, and why no socket
 * or TLS is involved, is described in front_harness.h.
 *
 * For any input: no crash, leak, sanitizer report or livelock, the connection ends, and
 * everything it held is freed. What it wrote must be a sequence of complete HTTP/1.1
 * responses (parsed back with http_parser): every status 100..599, every response either
 * the interim 100 or carrying a Content-Length, and every fault a JSON object with a
 * _typeName. Inputs that hold "HEAD" skip the parse (a response to HEAD announces a body it
 * does not carry, and a response parser cannot know which request it answers).
 */
#include <cjson/cJSON.h>
#include <strings.h>

#include "tests/fuzz/front_harness.h"

typedef struct {
    int status;
    int interim;
    int json;
    int in_msg;
    int last_was_value;
    size_t body_len;
    char body[8192];
    char hname[32];
    size_t hname_len;
} h1_check_t;

static int chk_header_field(http_parser *p, const char *at, size_t n)
{
    h1_check_t *k = p->data;

    if (k->last_was_value)
        k->hname_len = 0;
    k->last_was_value = 0;
    if (k->hname_len + n < sizeof(k->hname)) {
        memcpy(k->hname + k->hname_len, at, n);
        k->hname_len += n;
    } else {
        k->hname_len = sizeof(k->hname); /* too long to be one we look at */
    }
    return 0;
}

static int chk_header_value(http_parser *p, const char *at, size_t n)
{
    h1_check_t *k = p->data;

    if (!k->last_was_value && k->hname_len == 12 &&
        strncasecmp(k->hname, "content-type", 12) == 0 && n >= 16 &&
        strncmp(at, "application/json", 16) == 0)
        k->json = 1;
    k->last_was_value = 1;
    return 0;
}

static int chk_message_begin(http_parser *p)
{
    h1_check_t *k = p->data;

    k->body_len = 0;
    k->json = 0;
    k->hname_len = 0;
    k->last_was_value = 0;
    k->in_msg = 1;
    return 0;
}

static int chk_headers_complete(http_parser *p)
{
    h1_check_t *k = p->data;

    k->status = p->status_code;
    FZ_CHECK(k->status >= 100 && k->status <= 599);
    k->interim = k->status < 200;
    FZ_CHECK(k->interim ? k->status == 100 : (p->flags & F_CONTENTLENGTH) != 0);
    return 0;
}

static int chk_body(http_parser *p, const char *at, size_t n)
{
    h1_check_t *k = p->data;

    if (k->body_len + n <= sizeof(k->body))
        memcpy(k->body + k->body_len, at, n);
    k->body_len += n;
    return 0;
}

static int chk_message_complete(http_parser *p)
{
    h1_check_t *k = p->data;
    cJSON *j, *t;

    k->in_msg = 0;
    if (k->interim)
        return 0;
    if (k->status >= 400 && k->json && k->body_len <= sizeof(k->body)) {
        j = cJSON_ParseWithLength(k->body, k->body_len);
        FZ_CHECK(j != NULL && cJSON_IsObject(j));
        t = cJSON_GetObjectItemCaseSensitive(j, "_typeName");
        FZ_CHECK(cJSON_IsString(t) && t->valuestring[0] != '\0');
        cJSON_Delete(j);
    }
    return 0;
}

static const http_parser_settings chk_settings = {
    .on_message_begin = chk_message_begin,
    .on_header_field = chk_header_field,
    .on_header_value = chk_header_value,
    .on_headers_complete = chk_headers_complete,
    .on_body = chk_body,
    .on_message_complete = chk_message_complete,
};

static void check_output(const uint8_t *in, size_t n)
{
    static h1_check_t k;
    http_parser p;
    size_t done;

    if (fz.out_len == 0 || fz.out_total != fz.out_len || memmem(in, n, "HEAD", 4) != NULL)
        return;
    memset(&k, 0, sizeof(k));
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &k;
    done = http_parser_execute(&p, &chk_settings, (const char *)fz.out, fz.out_len);
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK || done != fz.out_len) {
        fprintf(stderr, "fuzz_h1: the output does not parse as HTTP/1.1 responses: %s at %zu\n",
                http_errno_description(HTTP_PARSER_ERRNO(&p)), done);
        fwrite(fz.out, 1, fz.out_len, stderr);
        abort();
    }
    /* Nothing half-written: the last response is complete. */
    FZ_CHECK(!k.in_msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz.ready)
        fz_init();
    if (size == 0)
        return 0;
    fz_run(&sg_h1_proto, data + 1, size - 1, data[0]);
    check_output(data + 1, size - 1);
    return 0;
}
