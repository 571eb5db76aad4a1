/* The console: COM1 output reaches the user's side; output into a file
 * stops at its limit, counted, so a guest cannot fill the host's disk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "bus.h"
#include "console.h"
#include "irq.h"
#include "runstate.h"

struct fx {
	struct bus pio;
	struct irq_ctl irq;
	struct runstate rs;
	struct console con;
	char path[64];
};

static void fx_open(struct fx *f, uint64_t limit)
{
	struct console_env env = { .pio = &f->pio, .irq = &f->irq, .rs = &f->rs };
	struct vmm_opts o;
	int fd;

	memset(f, 0, sizeof(*f));
	assert_int_equal(bus_init(&f->pio, "pio"), 0);
	assert_int_equal(irq_ctl_init(&f->irq, -1), 0);
	assert_int_equal(runstate_init(&f->rs), 0);
	assert_int_equal(console_init(&f->con, &env), 0);
	strcpy(f->path, "/tmp/vireo-console-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	memset(&o, 0, sizeof(o));
	o.console = VMM_CONSOLE_FILE;
	o.console_path = f->path;
	assert_int_equal(console_open(&f->con, &o), 0);
	assert_int_equal(f->con.out_max, CONSOLE_FILE_MAX);   /* a regular file */
	f->con.out_max = limit;
}

static off_t fx_close(struct fx *f)
{
	struct stat st;

	console_destroy(&f->con);
	assert_int_equal(stat(f->path, &st), 0);
	unlink(f->path);
	runstate_destroy(&f->rs);
	irq_ctl_destroy(&f->irq);
	bus_destroy(&f->pio);
	return st.st_size;
}

static void test_com1_to_file(void **state)
{
	struct fx f;
	const char *msg = "hello\n";

	(void)state;
	fx_open(&f, CONSOLE_FILE_MAX);
	for (const char *p = msg; *p; p++) {
		uint8_t b = (uint8_t)*p;
		assert_true(bus_access(&f.pio, 0x3f8, &b, 1, true));
	}
	console_exit_end(&f.con);
	assert_int_equal(console_dropped(&f.con), 0);
	assert_int_equal(fx_close(&f), 6);
}

static void test_file_limit(void **state)
{
	static uint8_t buf[3000];
	struct fx f;

	(void)state;
	memset(buf, 'x', sizeof(buf));
	fx_open(&f, 1000);
	console_write(&f.con, buf, sizeof(buf));
	for (int i = 0; i < 100; i++) {           /* COM1, held then flushed */
		uint8_t b = 'y';
		bus_access(&f.pio, 0x3f8, &b, 1, true);
	}
	console_flush(&f.con);
	assert_int_equal(console_dropped(&f.con), 2100);
	assert_int_equal(fx_close(&f), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_com1_to_file),
		cmocka_unit_test(test_file_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
