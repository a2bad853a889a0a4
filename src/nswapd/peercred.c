// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* The uid of a local TCP peer's socket; see peercred.h. */
#include "peercred.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The peer's socket is the one whose source is our peer and whose
 * destination is us: look that one up (an exact lookup, not a dump). */
static int fill_id(struct inet_diag_req_v2 *req, const struct sockaddr_storage *self,
		   const struct sockaddr_storage *peer)
{
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *p = (const void *)peer, *s = (const void *)self;

		req->id.idiag_sport = p->sin_port;
		req->id.idiag_dport = s->sin_port;
		memcpy(req->id.idiag_src, &p->sin_addr, 4);
		memcpy(req->id.idiag_dst, &s->sin_addr, 4);
	} else if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *p = (const void *)peer, *s = (const void *)self;

		req->id.idiag_sport = p->sin6_port;
		req->id.idiag_dport = s->sin6_port;
		memcpy(req->id.idiag_src, &p->sin6_addr, 16);
		memcpy(req->id.idiag_dst, &s->sin6_addr, 16);
	} else {
		return -1;
	}
	req->sdiag_family = (uint8_t)peer->ss_family;
	return 0;
}

int uid_is_admin(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

int peer_is_admin(int fd)
{
	uid_t uid;

	return peer_uid(fd, &uid) == 0 && uid_is_admin(uid);
}

int peer_uid(int fd, uid_t *uid)
{
	struct sockaddr_storage self, peer;
	socklen_t slen = sizeof(self), plen = sizeof(peer);
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = {
			.nlmsg_len = sizeof(msg),
			.nlmsg_type = SOCK_DIAG_BY_FAMILY,
			.nlmsg_flags = NLM_F_REQUEST,
			.nlmsg_seq = 1,
		},
		.req = {
			.sdiag_protocol = IPPROTO_TCP,
			.idiag_states = ~0U,
			.id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE },
		},
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	long buf[1024];		/* aligned for struct nlmsghdr */
	struct timeval tv = { .tv_sec = 1 };
	int nl, rc = -1, err = ENOENT;
	ssize_t n;

	if (getsockname(fd, (struct sockaddr *)&self, &slen) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		return -1;
	if (fill_id(&msg.req, &self, &peer) != 0) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	/* bounded: the answer comes at once or not at all */
	setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		err = errno;
		goto out;
	}
	n = recv(nl, buf, sizeof(buf), 0);
	if (n < 0) {
		err = errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			err = e->error ? -e->error : ENOENT;
			break;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			/* No inode: nobody holds that socket any more (closed, or
			 * a timewait entry, which reports uid 0): whoever sent the
			 * request cannot be told, so nobody is trusted. */
			if (!m->idiag_inode) {
				err = ESRCH;
				break;
			}
			*uid = m->idiag_uid;
			rc = 0;
			break;
		}
	}
out:
	close(nl);
	if (rc)
		errno = err;
	return rc;
}
