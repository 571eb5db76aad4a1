#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <vireo/util.h>

static void test_size_units(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(vsize_parse("512M", 1, &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(vsize_parse("2G", 1, &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(vsize_parse("64KiB", 1, &v), 0);
	assert_int_equal(v, 64ULL << 10);
	assert_int_equal(vsize_parse("1.5G", 1, &v), 0);
	assert_int_equal(v, 3ULL << 29);
	assert_int_equal(vsize_parse("256", 1ULL << 20, &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(vsize_parse("4096", 1, &v), 0);
	assert_int_equal(v, 4096);
}

static void test_size_bad(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(vsize_parse("", 1, &v), -EINVAL);
	assert_int_equal(vsize_parse("-1G", 1, &v), -EINVAL);
	assert_int_equal(vsize_parse("12Q", 1, &v), -EINVAL);
	assert_int_equal(vsize_parse("G", 1, &v), -EINVAL);
	assert_int_equal(vsize_parse("99999999999999999999", 1, &v), -ERANGE);
	assert_int_equal(vsize_parse("17179869184G", 1, &v), -ERANGE);
	assert_int_equal(v, 77);
}

static void test_parse_u64(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(vparse_u64("4", 1, 8, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(vparse_u64("0", 1, 8, &v), -ERANGE);
	assert_int_equal(vparse_u64("9", 1, 8, &v), -ERANGE);
	assert_int_equal(vparse_u64("4x", 1, 8, &v), -EINVAL);
	assert_int_equal(vparse_u64("-4", 0, 8, &v), -EINVAL);
}

static void test_size_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(vsize_format(512, buf, sizeof(buf)), "512 B");
	assert_string_equal(vsize_format(2ULL << 30, buf, sizeof(buf)), "2 GiB");
	assert_string_equal(vsize_format(3ULL << 19, buf, sizeof(buf)), "1.5 MiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_units),
		cmocka_unit_test(test_size_bad),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_size_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
