"""tests/integration/lib/vijson.py - replays the sessions of real VI/JSON clients.

    python3 vijson.py CLIENT PROTO PORT CA TOKEN USER PASSWORD MOID RECORD

runs one whole session of CLIENT (govmomi or vimrs) through the gateway on 127.0.0.1:PORT, over
PROTO (h1: HTTP/1.1, h2: HTTP/2; TLS verified against CA), on ONE kept-alive connection, with
the requests those clients send, byte for byte where their source says what the bytes are. Each
step's answer is checked as the client would read it, and so is what the simulator received
(RECORD, sms-sim --record): exactly one request for a forwarded step and none for a refused
one; the client's vmware-api-session-id unchanged and never an Authorization; on the guarded
routes (the stop call and the SmsTask queries) the body re-serialised (compact, the client's
members in its order, `_this` dropped or kept) labelled application/json, on the others the
client's bytes. MOID is the VasaProvider this session stops. Prints a line per step; exit
status 0 when everything held, 1 otherwise (the failures are printed).

What the clients send, as read in their source (not captured on a wire; the header order where
the source does not fix it is marked "as best known"):

govmomi v0.38.0 with its JSON transport (soap.Client.UseJSON(true); govc: GOVC_VI_JSON):
  - vim25/soap/json_client.go, Client.invoke: every call is a method: POST
    {url}/{namespace}/{version}/{this.Type}/{this.Value}/{method} (getPathForName; url .../sdk,
    namespace vim25, version 8.0.3.0 = vim25.Version), the body
    types.NewJSONEncoder(buf).Encode(params): the request struct whose Go type name is the method
    (unpackSOAPRequest) and becomes the root "_typeName" (vim25/types/json.go:
    DiscriminatorEncodeTypeNameRootValue | DiscriminatorEncodeTypeNameAllObjects, so every object
    carries its _typeName), compact, ended by Encode's "\n" (vim25/json/stream.go). The request is
    http.NewRequest(POST, uri, &buffer): no Content-Type. The session header
    (sessionHeader = "vmware-api-session-id") is added once a response carried one
    (checkForSessionHeader, after a 2xx JSON answer).
  - "_this": the SMS request types tag This `json:"_this"` (sms/types/types.go:
    TestFailoverReplicationGroupStopRequestType, QuerySmsTaskInfoRequestType, ...); the vim25 ones
    `json:"-"` (vim25/types/types.go: LoginRequestType, LogoutRequestType,
    RetrieveServiceContentRequestType), so Login, Logout and RetrieveServiceContent carry none.
  - the session: vim25.NewClient -> methods.GetServiceContent (RetrieveServiceContent on
    ServiceInstance; v0.38 never calls hello), session.Manager.Login (userName, password, locale
    session.Locale = "en_US"), the SMS methods (sms/methods), session.Manager.Logout.
  - vim25/soap/client.go, Client.Do: User-Agent "<exe> govmomi/0.38.0 (<go>;linux;amd64)".
  - Go's net/http, HTTP/1.1 (Request.write): Host, User-Agent, Content-Length, the other headers
    sorted by canonical name (Header.Add canonicalises: Vmware-Api-Session-Id), then the
    transport's Accept-Encoding: gzip. HTTP/2 (x/net/http2 encodeHeaders): :authority :method
    :path :scheme, the headers lowercased (map order: as best known), content-length,
    accept-encoding; the body in one DATA frame that ends the stream.

vim_rs 0.5 (noclue/vim_rs), reqwest over hyper:
  - vim_rs/src/core/client.rs, ClientBuilder::build_json: POST
    https://{host}/api/vcenter/system?action=hello, Content-Type: application/json and
    User-Agent, body {"api_releases":COMPATIBLE_API_RELEASES} = 9.0.0.0, 8.0.3.0, 8.0.2.0,
    8.0.1.0; the base becomes /sdk/vim25/{api_release of the answer}; then GET
    /ServiceInstance/ServiceInstance/content (fetch_property_raw) and
    SessionManager/{content.sessionManager.value}/Login.
  - JsonClient::build_post_request: a call with parameters sends Content-Type: application/json
    and the miniserde body, root "_typeName" "<Method>RequestType" first (generated
    vim_rs/src/mo/*.rs), no _this; a call without (QuerySmsTaskInfo, QuerySmsTaskResult) goes
    out through post_bare: no body, no Content-Type. prepare() adds vmware-api-session-id once
    known, then User-Agent "<exe> (vim_rs/<ver>; linux; x86_64; rustc/<ver>)".
  - Drop for JsonClient: POST .../SessionManager/{id}/Logout with the session header only.
  - reqwest adds its default Accept: */* after the request's own headers; hyper writes names in
    lowercase; a POST without a body has no Content-Length on HTTP/1.1 and content-length: 0 on
    HTTP/2 (hyper's h2 client: POST has payload semantics); the position of host and
    content-length as best known.

Both carry Authorization: Bearer TOKEN on every request, as a deployment adds it (a default
header, a round tripper): the gateway's credential, which must never reach vCenter.
"""
import base64
import http.client
import json
import os
import re
import ssl
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h2raw  # noqa: E402

VIMRS_RELEASES = ["9.0.0.0", "8.0.3.0", "8.0.2.0", "8.0.1.0"]
SERVED = "8.0.3.0"  # what sms-sim (an 8.0 Update 3 vCenter) picks from that list
GOVMOMI_UA = "smsguard-it govmomi/0.38.0 (go1.22.5;linux;amd64)"
VIMRS_UA = "smsguard-it (vim_rs/0.5.0; linux; x86_64; rustc/1.85.0)"
SESSION = "vmware-api-session-id"
GROUPS = [("fd-1", "rg-1"), ("fd-1", "fail-2")]


class Failed(Exception):
    pass


def compact(obj):
    """JSON as the gateway re-serialises it: compact, members in order, UTF-8 as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def moref(typ, value):
    return {"_typeName": "ManagedObjectReference", "type": typ, "value": value}


def group_ids():
    return [{"_typeName": "ReplicationGroupId",
             "faultDomainId": {"_typeName": "FaultDomainId", "id": fd},
             "deviceGroupId": {"_typeName": "DeviceGroupId", "id": dg}} for fd, dg in GROUPS]


# ---- transports: one connection each, answers as (status, [(name, value)], body) ----

class H1:
    """HTTP/1.1 with the header lines exactly as given (http.client adds none: no Host, no
    Accept-Encoding, no Content-Length of its own)."""

    def __init__(self, port, ca):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["http/1.1"])
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
        self.conn.connect()
        self.sock = self.conn.sock
        self.authority = "127.0.0.1:%d" % port

    def send(self, method, path, pseudo, headers, body):
        if self.conn.sock is not self.sock:
            raise Failed("the connection was not kept alive (closed after the previous answer)")
        self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for n, v in headers:
            self.conn.putheader(n, v)
        self.conn.endheaders(body if body else None)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, [(n.lower(), v) for n, v in r.getheaders()], data

    def close(self):
        self.conn.close()


class H2:
    """HTTP/2 (lib/h2raw.py): the header block exactly as given, the body in one DATA frame
    that ends the stream, a WINDOW_UPDATE for every answer's bytes so the window never runs
    dry however long the session."""

    def __init__(self, port, ca):
        self.conn = h2raw.Conn(port, ca)
        self.sid = 1
        self.authority = "127.0.0.1:%d" % port

    def send(self, method, path, pseudo, headers, body):
        sid, c = self.sid, self.conn
        self.sid += 2
        if c.closed or c.goaway is not None:
            raise Failed("the connection is gone (goaway %s)" % (c.goaway,))
        c.request(sid, pseudo + headers, end_stream=body is None)
        if body is not None:
            c.data(sid, body, end_stream=True)
        got = c.outcome(sid, 20)
        if not got.startswith("status"):
            raise Failed("stream %d: %s instead of an answer" % (sid, got))
        data = c.bodies.get(sid, b"")
        if data:
            inc = struct.pack(">I", len(data))
            c.send(h2raw.frame(h2raw.WINDOW_UPDATE, 0, 0, inc) +
                   h2raw.frame(h2raw.WINDOW_UPDATE, 0, sid, inc))
        hs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in c.headers.get(sid, [])
              if not n.startswith(b":")]
        return c.status[sid], hs, data

    def close(self):
        self.conn.close()


# ---- the record ----

def record_lines(path):
    try:
        with open(path, "rb") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def record_body(r):
    if "body_base64" in r:
        return base64.b64decode(r["body_base64"])
    return (r.get("body") or "").encode("utf-8")


def header_values(hs, name):
    return [v for n, v in hs if n.lower() == name]


# ---- a session ----

class Session:
    def __init__(self, client, proto, port, ca, token, record):
        self.client, self.proto, self.record = client, proto, record
        self.t = H1(port, ca) if proto == "h1" else H2(port, ca)
        self.auth = "Bearer " + token
        self.session = None
        self.failures = []

    def fail(self, msg):
        self.failures.append(msg)
        print("   FAILED: %s" % msg, flush=True)

    def headers_go(self, path, body):
        """govmomi: Go's net/http order (module docstring)."""
        n = len(body)
        if self.proto == "h1":
            hs = [("Host", self.t.authority), ("User-Agent", GOVMOMI_UA),
                  ("Content-Length", str(n)), ("Authorization", self.auth)]
            if self.session:
                hs.append(("Vmware-Api-Session-Id", self.session))
            return [], hs + [("Accept-Encoding", "gzip")]
        pseudo = [(":authority", self.t.authority), (":method", "POST"), (":path", path),
                  (":scheme", "https")]
        hs = [("authorization", self.auth), ("user-agent", GOVMOMI_UA)]
        if self.session:
            hs.append(("vmware-api-session-id", self.session))
        return pseudo, hs + [("content-length", str(n)), ("accept-encoding", "gzip")]

    def headers_rs(self, method, path, body, ua=True, ctype=True):
        """vim_rs: reqwest over hyper (module docstring)."""
        hs = []
        if ctype and body is not None:
            hs.append(("content-type", "application/json"))
        if self.session:
            hs.append(("vmware-api-session-id", self.session))
        if ua:
            hs.append(("user-agent", VIMRS_UA))
        hs += [("accept", "*/*"), ("authorization", self.auth)]
        if self.proto == "h1":
            hs.append(("host", self.t.authority))
            if body is not None:
                hs.append(("content-length", str(len(body))))
            return [], hs
        pseudo = [(":method", method), (":scheme", "https"), (":authority", self.t.authority),
                  (":path", path)]
        if method == "POST":
            hs.append(("content-length", str(len(body or b""))))
        return pseudo, hs

    def call(self, label, method, path, body, expect, guarded=False, forwarded=True, **kw):
        """One request and its checks; returns the decoded JSON answer (or None) and the
        answer's headers. A wrong answer ends the session (Failed)."""
        if self.client == "govmomi":
            pseudo, hs = self.headers_go(path, body)
        else:
            pseudo, hs = self.headers_rs(method, path, body, **kw)
        before = len(record_lines(self.record))
        sent_session = self.session
        try:
            status, rhs, data = self.t.send(method, path, pseudo, hs, body)
        except (Failed, OSError, http.client.HTTPException) as e:
            self.fail("%s: %s" % (label, e))
            raise Failed("the session cannot go on")
        doc = None
        if data:
            try:
                doc = json.loads(data)
            except ValueError:
                pass
        why = expect(status, rhs, data, doc)
        if why:
            self.fail("%s: %s; answer %d %s" % (label, why, status, data[:400]))
        new = record_lines(self.record)[before:]
        if not forwarded:
            if new:
                self.fail("%s: refused, yet the simulator received %s" %
                          (label, [(r["method"], r["path"]) for r in new]))
            upstream = "nothing forwarded"
        else:
            upstream = self.check_upstream(label, method, path, hs, body, new, guarded,
                                           sent_session)
        summary = status if why else "%d %s" % (status, self.describe(doc, rhs))
        print("   %s %-8s %-28s %s; %s" % (self.proto, self.client, label, summary, upstream),
              flush=True)
        if why:
            raise Failed("a real client stops at a wrong answer")
        return doc, rhs

    @staticmethod
    def describe(doc, rhs):
        if not isinstance(doc, dict):
            return "(no body)" if doc is None else "(JSON %s)" % type(doc).__name__
        s = doc.get("_typeName") or ("api_release %r" % doc.get("api_release"))
        if "invalidProperty" in doc:
            s += " invalidProperty %r" % doc["invalidProperty"]
        if doc.get("_typeName") == "ManagedObjectReference":
            s += " %s" % doc.get("value")
        if header_values(rhs, SESSION):
            s += " + session header"
        return s

    def check_upstream(self, label, method, path, hs, body, new, guarded, session):
        if len(new) != 1:
            self.fail("%s: the simulator received %d requests, expected 1: %s" %
                      (label, len(new), [(r["method"], r["path"]) for r in new]))
            return "?"
        r = new[0]
        up = [(n.lower(), v) for n, v in r["headers"]]
        errs = []
        if (r["method"], r["path"]) != (method, path):
            errs.append("arrived as %s %s" % (r["method"], r["path"]))
        if any(n in ("authorization", "proxy-authorization") for n, v in up):
            errs.append("Authorization forwarded")
        want = [session] if session else []
        if header_values(up, SESSION) != want:
            errs.append("session header %r upstream, the client sent %r" %
                        (header_values(up, SESSION), want))
        ua = header_values(hs, "user-agent")
        if header_values(up, "user-agent") not in (ua, [] if guarded else ua):
            errs.append("User-Agent %r upstream, the client sent %r" %
                        (header_values(up, "user-agent"), ua))
        got = record_body(r)
        if not guarded:
            if got != (body or b""):
                errs.append("body %r upstream, the client sent %r" % (got[:300], body))
            note = "body as sent"
        elif body is None or body == b"":
            if got:
                errs.append("body %r upstream for a request without one" % got[:300])
            note = "no body"
        else:
            obj = json.loads(body)
            keep = compact(obj)
            drop = compact({k: v for k, v in obj.items() if k != "_this"})
            if got not in (keep, drop):
                errs.append("body %r upstream, expected the canonical %r" % (got[:400], drop))
            ct = header_values(up, "content-type")
            if len(ct) != 1 or not re.fullmatch(r"application/json\s*(;.*)?", ct[0], re.I):
                errs.append("Content-Type %r upstream" % ct)
            note = "body canonical (%s)" % ("_this dropped" if got == drop and drop != keep
                                            else "as re-serialised")
        for e in errs:
            self.fail("%s: %s" % (label, e))
        return "upstream: session %s, no Authorization, %s" % (
            "unchanged" if session else "none", note)


# ---- what the answers must be ----

def is_json(rhs):
    ct = header_values(rhs, "content-type")
    return len(ct) == 1 and re.fullmatch(r"application/json\s*(;.*)?", ct[0], re.I)


def ok_json(check):
    def expect(status, rhs, data, doc):
        if status != 200:
            return "status %d, expected 200" % status
        if not is_json(rhs):
            return "Content-Type %r, not application/json" % header_values(rhs, "content-type")
        if not isinstance(doc, dict):
            return "not a JSON object"
        return check(doc, rhs)
    return expect


def fault(typ, prop=None):
    def expect(status, rhs, data, doc):
        if status != 500:
            return "status %d, expected 500 %s" % (status, typ)
        if not is_json(rhs) or not isinstance(doc, dict):
            return "not a JSON fault"
        if doc.get("_typeName") != typ:
            return "fault %r, expected %s" % (doc.get("_typeName"), typ)
        if prop is not None and doc.get("invalidProperty") != prop:
            return "invalidProperty %r, expected %r" % (doc.get("invalidProperty"), prop)
        return None
    return expect


def no_content(status, rhs, data, doc):
    if status != 204 or data:
        return "status %d with %d bytes, expected 204 without a body" % (status, len(data))
    return None


def service_content(doc, rhs):
    sm = doc.get("sessionManager")
    if doc.get("_typeName") != "ServiceContent" or not isinstance(sm, dict) \
            or sm.get("type") != "SessionManager" or not sm.get("value"):
        return "not a ServiceContent with a sessionManager"
    if not isinstance(doc.get("about"), dict) or doc["about"].get("apiVersion") != SERVED:
        return "about.apiVersion is not %s" % SERVED
    return None


def user_session(user):
    def check(doc, rhs):
        if doc.get("_typeName") != "UserSession" or doc.get("userName") != user:
            return "not the UserSession of %s" % user
        if not [v for v in header_values(rhs, SESSION) if re.fullmatch(r"[0-9a-f]{40}", v)]:
            return "no vmware-api-session-id header"
        return None
    return check


def task_ref(doc, rhs):
    if doc.get("_typeName") != "ManagedObjectReference" or doc.get("type") != "SmsTask" \
            or not doc.get("value"):
        return "not an SmsTask reference"
    return None


def task_result(doc, rhs):
    ids = [e.get("groupId", {}).get("deviceGroupId", {}).get("id") for e in doc.get("_value", [])]
    if doc.get("_typeName") != "ArrayOfGroupOperationResult" or ids != [g for _, g in GROUPS]:
        return "not the result of groups %s" % [g for _, g in GROUPS]
    return None


def task_info(task, moid):
    def check(doc, rhs):
        if doc.get("_typeName") != "SmsTaskInfo" or doc.get("key") != task \
                or doc.get("task") != moref("SmsTask", task):
            return "not the SmsTaskInfo of %s" % task
        if doc.get("object") != moref("VasaProvider", moid) or doc.get("state") != "success":
            return "object %r, state %r" % (doc.get("object"), doc.get("state"))
        return task_result(doc.get("result") or {}, rhs)
    return check


# ---- the two clients ----

def govmomi(s, user, password, moid):
    base = "/sdk/vim25/8.0.3.0"
    enc = lambda obj: compact(obj) + b"\n"  # noqa: E731 - json.Encoder.Encode's newline

    def method(this_type, this_value, name, params, this=True):
        obj = {"_typeName": name}
        if this:
            obj["_this"] = moref(this_type, this_value)
        obj.update(params)
        return "%s/%s%s/%s/%s" % (base, "sms/" if this else "", this_type, this_value, name), \
            enc(obj)

    def stop(this_type, this_value):
        return method(this_type, this_value, "TestFailoverReplicationGroupStop_Task",
                      {"groupId": group_ids(), "force": False})

    path, body = method("ServiceInstance", "ServiceInstance", "RetrieveServiceContent", {},
                        this=False)
    sc, _ = s.call("RetrieveServiceContent", "POST", path, body, ok_json(service_content))
    sm = sc["sessionManager"]["value"]
    path, body = method("SessionManager", sm, "Login",
                        {"userName": user, "password": password, "locale": "en_US"}, this=False)
    _, rhs = s.call("Login", "POST", path, body, ok_json(user_session(user)))
    s.session = header_values(rhs, SESSION)[0]

    path, body = stop("VasaProvider", moid)
    ref, _ = s.call("TestFailoverReplicationGroupStop_Task", "POST", path, body,
                    ok_json(task_ref), guarded=True)
    task = ref["value"]
    # _this naming another object than the path: refused, nothing forwarded
    for label, typ, value in (("stop, _this another provider", "VasaProvider", moid + "-other"),
                              ("stop, _this not a provider", "SmsTask", moid)):
        p, _ = stop("VasaProvider", moid)
        _, b = stop(typ, value)
        s.call(label, "POST", p, b, fault("InvalidArgument", "_this"), guarded=True,
               forwarded=False)
    path, body = method("SmsTask", task, "QuerySmsTaskInfo", {})
    s.call("QuerySmsTaskInfo", "POST", path, body, ok_json(task_info(task, moid)), guarded=True)
    _, b = method("SmsTask", task + "9", "QuerySmsTaskInfo", {})
    s.call("QuerySmsTaskInfo, _this another", "POST", path, b, fault("InvalidArgument", "_this"),
           guarded=True, forwarded=False)
    path, body = method("SmsTask", task, "QuerySmsTaskResult", {})
    s.call("QuerySmsTaskResult", "POST", path, body, ok_json(task_result), guarded=True)

    path, body = method("SessionManager", sm, "Logout", {}, this=False)
    s.call("Logout", "POST", path, body, no_content)
    # the session is over upstream: vCenter's NotAuthenticated comes back through the gateway
    path, body = stop("VasaProvider", moid)
    s.call("stop after Logout", "POST", path, body, fault("NotAuthenticated"), guarded=True)


def vimrs(s, user, password, moid):
    body = compact({"api_releases": VIMRS_RELEASES})
    doc, _ = s.call("hello", "POST", "/api/vcenter/system?action=hello", body,
                    ok_json(lambda d, h: None if d.get("api_release") == SERVED else
                            "api_release %r, expected %s" % (d.get("api_release"), SERVED)))
    base = "/sdk/vim25/" + doc["api_release"]
    sc, _ = s.call("GET content", "GET", base + "/ServiceInstance/ServiceInstance/content", None,
                   ok_json(service_content))
    sm = sc["sessionManager"]["value"]
    body = compact({"_typeName": "LoginRequestType", "userName": user, "password": password})
    _, rhs = s.call("Login", "POST", "%s/SessionManager/%s/Login" % (base, sm), body,
                    ok_json(user_session(user)))
    s.session = header_values(rhs, SESSION)[0]

    body = compact({"_typeName": "TestFailoverReplicationGroupStopRequestType",
                    "groupId": group_ids(), "force": False})
    ref, _ = s.call("TestFailoverReplicationGroupStop_Task", "POST",
                    "%s/sms/VasaProvider/%s/TestFailoverReplicationGroupStop_Task" % (base, moid),
                    body, ok_json(task_ref), guarded=True)
    task = ref["value"]
    s.call("QuerySmsTaskInfo (no body)", "POST",
           "%s/sms/SmsTask/%s/QuerySmsTaskInfo" % (base, task), None,
           ok_json(task_info(task, moid)), guarded=True)
    s.call("QuerySmsTaskResult (no body)", "POST",
           "%s/sms/SmsTask/%s/QuerySmsTaskResult" % (base, task), None, ok_json(task_result),
           guarded=True)
    s.call("Logout", "POST", "%s/SessionManager/%s/Logout" % (base, sm), None, no_content,
           ua=False)


def main():
    client, proto, port, ca, token, user, password, moid, record = sys.argv[1:10]
    s = Session(client, proto, int(port), ca, token, record)
    try:
        {"govmomi": govmomi, "vimrs": vimrs}[client](s, user, password, moid)
    except Failed:
        pass
    finally:
        s.t.close()
    if s.failures:
        print("%s over %s: %d check(s) failed" % (client, proto, len(s.failures)))
        sys.exit(1)


if __name__ == "__main__":
    main()
