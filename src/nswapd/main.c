/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* nswapd: the nswap memory server.  Command line, configuration, and
 * (without --foreground) detaching; the work is in server.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
	struct gossip_config gc;

	gossip_config_defaults(&gc);
	fprintf(f,
		"usage: nswapd [-c FILE] [--listen ADDR:PORT] [--cache-size SIZE] [--name NAME]\n"
		"              [--max-clients N] [--loops N] [--log-level LEVEL] [--foreground]\n"
		"              [--gossip on|off] [--gossip-address ADDR] [--gossip-seeds LIST]\n"
		"              [--gossip-port PORT] [--gossip-interval MS] [--gossip-fanout N]\n"
		"              [--node-id ID] [--gossip-subnet CIDR] [--gossip-table-file PATH]\n"
		"              [--client-device NAME] [--client-servers N] [--elastic on|off]\n"
		"              [--elastic-reserve SIZE] [--elastic-step SIZE] [--elastic-psi PCT]\n"
		"              [--elastic-interval MS] [--meminfo-file PATH] [--pressure-file PATH]\n"
		"              [--overflow SIZE] [--hello-timeout MS] [--max-pending N]\n"
		"              [--max-pending-per-address N] [--check-config]\n"
		"\n"
		"  -c, --config FILE     read `key = value` settings from FILE (no file is read\n"
		"                        without -c); command-line options override it\n"
		"  -l, --listen ADDR:PORT  address to listen on (default %s)\n"
		"  -s, --cache-size SIZE   page cache size, bytes or K/M/G suffix (default 256M)\n"
		"  -n, --name NAME         node name reported in HELLO and STATUS (default hostname)\n"
		"  -m, --max-clients N     maximum simultaneous connections (default %d)\n"
		"      --hello-timeout MS  close a connection that has not said HELLO MS ms\n"
		"                        after it was accepted (default %d, 100-600000)\n"
		"      --max-pending N     connections not past HELLO at once: auto (default:\n"
		"                        half of max_clients) or 1-65536\n"
		"      --max-pending-per-address N  of those, from one address (default %d)\n"
		"      --loops N           event-loop threads: auto (default: one per CPU nswapd\n"
		"                        may run on, at most %d) or 1-%d\n"
		"      --log-level LEVEL   error, warning, info (default) or debug\n"
		"      --gossip on|off     gossip membership with the other nswapd (default off)\n"
		"      --gossip-address ADDR  IPv4 address announced for this server (default:\n"
		"                        the listen address; required when listening on 0.0.0.0)\n"
		"      --gossip-seeds LIST  IPv4 addresses to join through, comma-separated, at\n"
		"                        most %d\n"
		"      --gossip-port PORT  UDP port of every node's gossip (default %u)\n"
		"      --gossip-interval MS  one gossip round every MS ms (default %u, 10-600000)\n"
		"      --gossip-fanout N   members told per round (default %u, 1-%d)\n"
		"      --node-id ID        nonzero 64-bit id, decimal or 0x hex (default auto:\n"
		"                        from /etc/machine-id and the announced address:port)\n"
		"      --gossip-subnet CIDR  drop gossip datagrams from outside A.B.C.D/N\n"
		"      --gossip-table-file PATH  write the membership table there as JSON\n"
		"                        after every round (default: none)\n"
		"      --client-device NAME  keep this nswap device's servers (configfs NAME)\n"
		"                        in step with the gossip table (needs gossip on)\n"
		"      --client-servers N  servers taken from the table, 1-64 (default %d)\n"
		"      --elastic on|off    move the cache limit with this node's memory needs\n"
		"                        (default off): start at one step, grow while idle\n"
		"      --elastic-reserve SIZE  MemAvailable kept for the node (default 256M)\n"
		"      --elastic-step SIZE  grow/shrink chunk (default 64M)\n"
		"      --elastic-psi PCT   shrink when memory stall some avg10 > PCT (default 10)\n"
		"      --elastic-interval MS  check every MS ms (default 1000, 10-600000)\n"
		"      --meminfo-file PATH  MemAvailable from PATH (default /proc/meminfo)\n"
		"      --pressure-file PATH  PSI from PATH (default /proc/pressure/memory;\n"
		"                        empty: MemAvailable alone)\n"
		"      --overflow SIZE     pages a full cache still takes from clients that\n"
		"                        follow moves while a gossip member has room, then\n"
		"                        moves there (default 0: none; needs gossip on)\n"
		"  -f, --foreground        do not detach (use under systemd)\n"
		"      --check-config      validate the configuration, print it, exit\n"
		"  -V, --version           print the version and protocol range\n"
		"\n"
		"Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 on a runtime error,\n"
		"2 on a usage or configuration error.  SIGHUP logs the status counters\n"
		"(and, with gossip on, the membership table).\n",
		CONFIG_DEFAULT_LISTEN, CONFIG_DEFAULT_CLIENTS, CONFIG_DEFAULT_HELLO_TIMEOUT,
		CONFIG_DEFAULT_PENDING_PER_ADDRESS, CONFIG_AUTO_LOOPS, CONFIG_MAX_LOOPS,
		GOSSIP_MAX_SEEDS, gc.gossip_port, gc.interval_ms, gc.fanout, GOSSIP_MAX_FANOUT,
		CONFIG_DEFAULT_CLIENT_SERVERS);
}

/* Detach; the parent exits once the child reports whether it started. */
static int daemonize(int *notify_fd)
{
	int p[2];
	pid_t pid;
	char rc = 1;

	if (pipe(p) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &rc, 1) != 1)
			rc = 1;
		_exit(rc);
	}
	close(p[0]);
	if (setsid() < 0 || chdir("/") != 0)
		return -1;
	int nullfd = open("/dev/null", O_RDWR);

	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		if (nullfd > STDERR_FILENO)
			close(nullfd);
	}
	*notify_fd = p[1];
	return 0;
}

static void notify(int *fd, char rc)
{
	if (*fd < 0)
		return;
	if (write(*fd, &rc, 1) != 1)
		rc = 1;
	close(*fd);
	*fd = -1;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_LOGLEVEL, OPT_LOOPS, OPT_GOSSIP, OPT_GPORT, OPT_GINTERVAL,
	       OPT_GFANOUT, OPT_GSEEDS, OPT_GADDRESS, OPT_NODEID, OPT_GSUBNET, OPT_GTABLE,
	       OPT_CDEVICE, OPT_CSERVERS, OPT_ELASTIC, OPT_ERESERVE, OPT_ESTEP, OPT_EPSI,
	       OPT_EINTERVAL, OPT_MEMINFO, OPT_PRESSURE, OPT_OVERFLOW, OPT_HTIMEOUT,
	       OPT_PENDING, OPT_PENDADDR };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "cache-size", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, OPT_LOGLEVEL },
		{ "loops", required_argument, NULL, OPT_LOOPS },
		{ "gossip", required_argument, NULL, OPT_GOSSIP },
		{ "gossip-port", required_argument, NULL, OPT_GPORT },
		{ "gossip-interval", required_argument, NULL, OPT_GINTERVAL },
		{ "gossip-fanout", required_argument, NULL, OPT_GFANOUT },
		{ "gossip-seeds", required_argument, NULL, OPT_GSEEDS },
		{ "gossip-address", required_argument, NULL, OPT_GADDRESS },
		{ "node-id", required_argument, NULL, OPT_NODEID },
		{ "gossip-subnet", required_argument, NULL, OPT_GSUBNET },
		{ "gossip-table-file", required_argument, NULL, OPT_GTABLE },
		{ "client-device", required_argument, NULL, OPT_CDEVICE },
		{ "client-servers", required_argument, NULL, OPT_CSERVERS },
		{ "elastic", required_argument, NULL, OPT_ELASTIC },
		{ "elastic-reserve", required_argument, NULL, OPT_ERESERVE },
		{ "elastic-step", required_argument, NULL, OPT_ESTEP },
		{ "elastic-psi", required_argument, NULL, OPT_EPSI },
		{ "elastic-interval", required_argument, NULL, OPT_EINTERVAL },
		{ "meminfo-file", required_argument, NULL, OPT_MEMINFO },
		{ "pressure-file", required_argument, NULL, OPT_PRESSURE },
		{ "overflow", required_argument, NULL, OPT_OVERFLOW },
		{ "hello-timeout", required_argument, NULL, OPT_HTIMEOUT },
		{ "max-pending", required_argument, NULL, OPT_PENDING },
		{ "max-pending-per-address", required_argument, NULL, OPT_PENDADDR },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct { const char *key, *opt, *value; } cli[32];
	int ncli = 0, foreground = 0, check = 0, opt, notify_fd = -1, rc;
	const char *path = NULL;
	struct config cfg;
	struct server s;

	while ((opt = getopt_long(argc, argv, "c:l:s:n:m:fVh", opts, NULL)) != -1) {
		const char *key = NULL, *name = NULL;

		switch (opt) {
		case 'c': path = optarg; break;
		case 'l': key = "listen"; name = "--listen"; break;
		case 's': key = "cache_size"; name = "--cache-size"; break;
		case 'n': key = "name"; name = "--name"; break;
		case 'm': key = "max_clients"; name = "--max-clients"; break;
		case OPT_LOGLEVEL: key = "log_level"; name = "--log-level"; break;
		case OPT_LOOPS: key = "loops"; name = "--loops"; break;
		case OPT_GOSSIP: key = "gossip"; name = "--gossip"; break;
		case OPT_GPORT: key = "gossip_port"; name = "--gossip-port"; break;
		case OPT_GINTERVAL: key = "gossip_interval"; name = "--gossip-interval"; break;
		case OPT_GFANOUT: key = "gossip_fanout"; name = "--gossip-fanout"; break;
		case OPT_GSEEDS: key = "gossip_seeds"; name = "--gossip-seeds"; break;
		case OPT_GADDRESS: key = "gossip_address"; name = "--gossip-address"; break;
		case OPT_NODEID: key = "node_id"; name = "--node-id"; break;
		case OPT_GSUBNET: key = "gossip_subnet"; name = "--gossip-subnet"; break;
		case OPT_GTABLE: key = "gossip_table_file"; name = "--gossip-table-file"; break;
		case OPT_CDEVICE: key = "client_device"; name = "--client-device"; break;
		case OPT_CSERVERS: key = "client_servers"; name = "--client-servers"; break;
		case OPT_ELASTIC: key = "elastic"; name = "--elastic"; break;
		case OPT_ERESERVE: key = "elastic_reserve"; name = "--elastic-reserve"; break;
		case OPT_ESTEP: key = "elastic_step"; name = "--elastic-step"; break;
		case OPT_EPSI: key = "elastic_psi"; name = "--elastic-psi"; break;
		case OPT_EINTERVAL: key = "elastic_interval"; name = "--elastic-interval"; break;
		case OPT_MEMINFO: key = "meminfo_file"; name = "--meminfo-file"; break;
		case OPT_PRESSURE: key = "pressure_file"; name = "--pressure-file"; break;
		case OPT_OVERFLOW: key = "overflow"; name = "--overflow"; break;
		case OPT_HTIMEOUT: key = "hello_timeout"; name = "--hello-timeout"; break;
		case OPT_PENDING: key = "max_pending"; name = "--max-pending"; break;
		case OPT_PENDADDR:
			key = "max_pending_per_address";
			name = "--max-pending-per-address";
			break;
		case 'f': foreground = 1; break;
		case OPT_CHECK: check = 1; break;
		case 'V':
			printf("nswapd %s (protocol versions %u-%u)\n", NSWAPD_VERSION,
			       NSWAP_PROTO_MIN_VERSION, NSWAP_PROTO_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (key) {
			if (ncli == (int)(sizeof(cli) / sizeof(cli[0]))) {
				fprintf(stderr, "nswapd: too many options\n");
				return 2;
			}
			cli[ncli].key = key;
			cli[ncli].opt = name;
			cli[ncli++].value = optarg;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "nswapd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	if (path && config_load(&cfg, path) != 0)
		return 2;
	for (int i = 0; i < ncli; i++)
		if (config_set(&cfg, cli[i].key, cli[i].value, cli[i].opt) != 0)
			return 2;
	if (config_finish(&cfg) != 0)
		return 2;
	if (check) {
		config_print(&cfg);
		return 0;
	}

	log_set_level(cfg.log_level);
	/* NSWAPD_CRC32C=software: skip the SSE4.2 path (for testing). */
	const char *crc_env = getenv("NSWAPD_CRC32C");

	if (crc32c_init(crc_env && !strcmp(crc_env, "software")) != 0) {
		log_msg(L_ERR, "crc32c self-test failed (%s)", crc32c_impl());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!foreground && daemonize(&notify_fd) != 0) {
		log_msg(L_ERR, "cannot detach: %s", strerror(errno));
		return 1;
	}
	umask(077);
	if (server_init(&s, &cfg) != 0) {
		notify(&notify_fd, 1);
		server_destroy(&s);
		return 1;
	}
	notify(&notify_fd, 0);
	rc = server_run(&s);
	server_destroy(&s);
	return rc;
}
