/*
 * tools/bench/minflt.c - the real kernel's minor-fault cost on this
 * machine, the baseline for `npm run bench -- fault`.
 *
 * Maps N anonymous pages, touches each with one write (first-touch
 * anonymous fault: zeroed page allocation), then forks and lets the child
 * write each page again (COW fault). Prints two lines:
 *   anon <pages> <ns>
 *   cow <pages> <ns>
 * THP is disabled on the range with MADV_NOHUGEPAGE so that every page
 * faults separately, as in the simulator's 4 KiB path.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long pages = argc > 1 ? atol(argv[1]) : 262144;
	long psz = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)pages * psz;
	int pipefd[2];
	char *buf;
	long long t0, t1;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(buf, len, MADV_NOHUGEPAGE);
	t0 = now_ns();
	for (long i = 0; i < pages; i++)
		buf[i * psz] = (char)i;
	t1 = now_ns();
	printf("anon %ld %lld\n", pages, t1 - t0);
	fflush(stdout);

	if (pipe(pipefd))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		long long c0 = now_ns();
		for (long i = 0; i < pages; i++)
			buf[i * psz] = (char)(i + 1);
		long long c1 = now_ns();
		dprintf(pipefd[1], "cow %ld %lld\n", pages, c1 - c0);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	char line[128];
	ssize_t n = read(pipefd[0], line, sizeof(line) - 1);
	if (n > 0) {
		line[n] = 0;
		fputs(line, stdout);
	}
	return 0;
}
