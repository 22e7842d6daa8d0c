/*
 * Unit tests for base/pool.c: the bump allocator, and sg_pool_cache_t, the bounded free
 * list a worker's request pools and buffers take their blocks from and give them back to.
 * A build with AddressSanitizer keeps no block (every one is freed for ASan to watch):
 * there the same tests check that nothing is kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void allocations_are_aligned_and_distinct(void **state)
{
    sg_pool_t p;
    char *a, *b, *big;

    sg_pool_init(&p, 256);
    a = sg_pool_alloc(&p, 3);
    b = sg_pool_alloc(&p, 5);
    big = sg_pool_alloc(&p, 1000); /* larger than a quarter chunk: a chunk of its own */
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(big);
    assert_int_equal((uintptr_t)a % 16, 0);
    assert_int_equal((uintptr_t)b % 16, 0);
    assert_true(b >= a + 16);
    memset(big, 'x', 1000);
    assert_string_equal(sg_pool_strndup(&p, "abcdef", 3), "abc");
    sg_pool_dispose(&p);
}

static void a_cached_pool_reuses_its_chunk_for_the_next_pool(void **state)
{
    sg_pool_cache_t pc;
    sg_pool_t p;
    void *first, *again;

    sg_pool_cache_init(&pc, 4);
    sg_pool_init_cached(&p, &pc);
    first = sg_pool_alloc(&p, 100);
    assert_non_null(first);
    assert_non_null(sg_pool_alloc(&p, 3000)); /* a big one: its own chunk, not a block */
    sg_pool_dispose(&p);
    assert_int_equal(pc.n, pc.max > 0 ? 1 : 0); /* the block came back, the big one went */

    sg_pool_init_cached(&p, &pc);
    again = sg_pool_alloc(&p, 100);
    assert_non_null(again);
    if (pc.max > 0) {
        assert_ptr_equal(again, first); /* the same block, at the same offset */
        assert_int_equal(pc.n, 0);
    }
    sg_pool_dispose(&p);
    sg_pool_cache_dispose(&pc);
    assert_int_equal(pc.n, 0);
    assert_null(pc.free);
}

static void the_cache_keeps_no_more_than_its_bound(void **state)
{
    sg_pool_cache_t pc;
    void *b[6];

    sg_pool_cache_init(&pc, 4);
    for (size_t i = 0; i < 6; i++)
        assert_non_null(b[i] = sg_pool_cache_get(&pc));
    for (size_t i = 0; i < 6; i++)
        sg_pool_cache_put(&pc, b[i]); /* the last two are freed */
    assert_int_equal(pc.n, pc.max > 0 ? 4 : 0);
    sg_pool_cache_dispose(&pc);
    assert_int_equal(pc.n, 0);
}

static void a_zeroed_cache_keeps_nothing(void **state)
{
    sg_pool_cache_t pc = {0};
    sg_pool_t p;

    sg_pool_init_cached(&p, &pc);
    assert_non_null(sg_pool_alloc(&p, 16));
    sg_pool_dispose(&p);
    assert_int_equal(pc.n, 0);
    assert_null(pc.free);
}

static void a_buffer_takes_a_block_and_gives_it_back(void **state)
{
    sg_pool_cache_t pc;
    sg_buf_t b, small;

    sg_pool_cache_init(&pc, 4);
    sg_buf_init(&b, 1 << 20);
    sg_pool_cache_buf_seed(&pc, &b);
    assert_non_null(b.data);
    assert_int_equal(b.cap, SG_POOL_BLOCK);
    assert_int_equal(sg_buf_lit(&b, "hello"), SG_OK);
    assert_memory_equal(sg_buf_head(&b), "hello", 5);
    sg_pool_cache_buf_dispose(&pc, &b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(pc.n, pc.max > 0 ? 1 : 0);

    /* A maximum below a block: the buffer's capacity would pass it, so no block. */
    sg_buf_init(&small, 100);
    sg_pool_cache_buf_seed(&pc, &small);
    assert_null(small.data);
    assert_int_equal(sg_buf_lit(&small, "x"), SG_OK);
    sg_pool_cache_buf_dispose(&pc, &small); /* not a block: freed */
    assert_int_equal(pc.n, pc.max > 0 ? 1 : 0);

    /* Grown past its block, the storage is freed, not kept. */
    sg_buf_init(&b, 1 << 20);
    sg_pool_cache_buf_seed(&pc, &b);
    assert_int_equal(sg_buf_reserve(&b, 3 * SG_POOL_BLOCK), SG_OK);
    assert_true(b.cap > SG_POOL_BLOCK);
    sg_pool_cache_buf_dispose(&pc, &b);
    assert_int_equal(pc.n, 0);
    sg_pool_cache_dispose(&pc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allocations_are_aligned_and_distinct),
        cmocka_unit_test(a_cached_pool_reuses_its_chunk_for_the_next_pool),
        cmocka_unit_test(the_cache_keeps_no_more_than_its_bound),
        cmocka_unit_test(a_zeroed_cache_keeps_nothing),
        cmocka_unit_test(a_buffer_takes_a_block_and_gives_it_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
