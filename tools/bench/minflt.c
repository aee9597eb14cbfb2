/*
 * tools/bench/minflt.c - the real kernel's fault, fork and munmap costs on
 * this machine, the baseline for `npm run bench -- fault` and `scaling`.
 *
 * Maps N anonymous pages, touches each with one write (first-touch
 * anonymous fault: zeroed page allocation), forks (copies the page
 * tables, write-protects both sides), lets the child write each page
 * again (COW fault) and exit, then unmaps the range in the parent. Prints
 * one line per phase: "<phase> <pages> <wall ns> <cpu ns>", CPU time from
 * CLOCK_PROCESS_CPUTIME_ID of the process doing the work (the child's
 * for cow). exit is the child's: from its last report to the parent's
 * return from waitpid (wall), and its CPU time from getrusage
 * (RUSAGE_CHILDREN, microseconds) minus what it had used at that report. THP is disabled on the range with MADV_NOHUGEPAGE so that
 * every page faults separately, as in the simulator's 4 KiB path.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct stamp { long long wall, cpu; };

static struct stamp now(void)
{
	struct stamp s = { clock_ns(CLOCK_MONOTONIC), clock_ns(CLOCK_PROCESS_CPUTIME_ID) };
	return s;
}

static void report(int fd, const char *phase, long pages, struct stamp a, struct stamp b)
{
	dprintf(fd, "%s %ld %lld %lld\n", phase, pages, b.wall - a.wall, b.cpu - a.cpu);
}

int main(int argc, char **argv)
{
	long pages = argc > 1 ? atol(argv[1]) : 262144;
	long psz = sysconf(_SC_PAGESIZE);
	size_t len = (size_t)pages * psz;
	int pipefd[2];
	char *buf;
	struct stamp t0, t1;

	buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	madvise(buf, len, MADV_NOHUGEPAGE);
	t0 = now();
	for (long i = 0; i < pages; i++)
		buf[i * psz] = (char)i;
	t1 = now();
	report(1, "anon", pages, t0, t1);

	if (pipe(pipefd))
		return 1;
	t0 = now();
	pid_t pid = fork();
	if (pid == 0) {
		struct stamp c0 = now();
		for (long i = 0; i < pages; i++)
			buf[i * psz] = (char)(i + 1);
		struct stamp c1 = now();
		report(pipefd[1], "cow", pages, c0, c1);
		dprintf(pipefd[1], "cowend %lld %lld\n", c1.wall, c1.cpu);
		_exit(0);
	}
	t1 = now();
	report(1, "fork", pages, t0, t1);
	waitpid(pid, NULL, 0);
	long long exited = clock_ns(CLOCK_MONOTONIC);
	struct rusage ru;
	getrusage(RUSAGE_CHILDREN, &ru);
	long long child_cpu = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
			      (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
	char line[256];
	ssize_t n = read(pipefd[0], line, sizeof(line) - 1);
	if (n > 0) {
		long long end_wall = 0, end_cpu = 0;
		char *e;

		line[n] = 0;
		e = strstr(line, "cowend ");
		if (e != NULL) {
			sscanf(e, "cowend %lld %lld", &end_wall, &end_cpu);
			*e = 0;
		}
		fputs(line, stdout);
		printf("exit %ld %lld %lld\n", pages, exited - end_wall, child_cpu - end_cpu);
		fflush(stdout);
	}
	t0 = now();
	munmap(buf, len);
	t1 = now();
	report(1, "munmap", pages, t0, t1);
	return 0;
}
