// kverify sim's network shim, loaded with LD_PRELOAD into every process of a simulated pod.
//
// What a pod's network namespace and the cluster DNS give a real pod, without root and without namespaces:
//  - bind() to 0.0.0.0 or 127.0.0.1 binds the pod's own address (KVERIFY_POD_IP) instead, so two pods can both
//    listen on :8000, and what a pod serves on "localhost" stays its own;
//  - connect() to 127.0.0.1 goes to the pod's own address (containers of one pod share localhost);
//  - getaddrinfo() resolves Service names (`redis-service`, `redis-service.ns`, `….svc.cluster.local`) from the
//    hosts file the sim keeps for the pod's namespace (KVERIFY_HOSTS_FILE), read on every lookup so Services created
//    after the pod started resolve too. Everything else goes to libc unchanged.
// Statically linked programs (Go binaries) bypass it; the sim documents that.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static int pod_address(struct in_addr *out) {
    const char *ip = getenv("KVERIFY_POD_IP");
    return ip != NULL && inet_pton(AF_INET, ip, out) == 1;
}

static int is_wildcard_or_localhost(const struct sockaddr_in *in) {
    uint32_t address = ntohl(in->sin_addr.s_addr);
    return address == INADDR_ANY || address == INADDR_LOOPBACK;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    struct in_addr pod;
    if (addr != NULL && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in) && pod_address(&pod)
        && is_wildcard_or_localhost((const struct sockaddr_in *)addr)) {
        struct sockaddr_in rewritten = *(const struct sockaddr_in *)addr;
        rewritten.sin_addr = pod;
        return real_bind(fd, (const struct sockaddr *)&rewritten, sizeof rewritten);
    }
    // Pods are IPv4-only (kind's default): a wildcard or loopback IPv6 bind would be shared by every pod, so it is
    // refused as "address not available", which dual-stack servers (redis' `bind * -::*`) skip.
    if (addr != NULL && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6) && pod_address(&pod)) {
        const struct in6_addr *address = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_UNSPECIFIED(address) || IN6_IS_ADDR_LOOPBACK(address)) {
            errno = EADDRNOTAVAIL;
            return -1;
        }
    }
    return real_bind(fd, addr, len);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_connect)(int, const struct sockaddr *, socklen_t);
    if (!real_connect) real_connect = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    struct in_addr pod;
    if (addr != NULL && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in) && pod_address(&pod)
        && ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) == INADDR_LOOPBACK) {
        struct sockaddr_in rewritten = *(const struct sockaddr_in *)addr;
        rewritten.sin_addr = pod;
        return real_connect(fd, (const struct sockaddr *)&rewritten, sizeof rewritten);
    }
    return real_connect(fd, addr, len);
}

// Looks `name` up in the hosts file: lines of "NAME ADDRESS". Returns 1 and fills `address` when found.
static int lookup_service(const char *name, char *address, size_t size) {
    const char *path = getenv("KVERIFY_HOSTS_FILE");
    if (path == NULL || name == NULL) return 0;
    FILE *file = fopen(path, "re");
    if (file == NULL) return 0;
    char line[512], key[256], value[64];
    int found = 0;
    size_t length = strlen(name);
    // A trailing dot (fully qualified) names the same Service.
    if (length > 0 && name[length - 1] == '.') length--;
    while (!found && fgets(line, sizeof line, file) != NULL) {
        if (sscanf(line, "%255s %63s", key, value) == 2 && strlen(key) == length && strncasecmp(key, name, length) == 0) {
            snprintf(address, size, "%s", value);
            found = 1;
        }
    }
    fclose(file);
    return found;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static int (*real_getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real_getaddrinfo) {
        real_getaddrinfo = (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
    }
    char address[64];
    if (lookup_service(node, address, sizeof address)) {
        struct addrinfo numeric = {0};
        if (hints != NULL) numeric = *hints;
        // Service addresses are IPv4; a caller asking for AF_UNSPEC or AF_INET gets it.
        if (numeric.ai_family == AF_UNSPEC) numeric.ai_family = AF_INET;
        numeric.ai_flags |= AI_NUMERICHOST;
        numeric.ai_flags &= ~AI_CANONNAME;
        return real_getaddrinfo(address, service, &numeric, res);
    }
    return real_getaddrinfo(node, service, hints, res);
}
