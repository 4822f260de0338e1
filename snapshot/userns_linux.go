package snapshot

import (
	"os"
	"strings"
	"sync"
)

var userNS = sync.OnceValue(func() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	// The initial namespace maps every id to itself: "0 0 4294967295".
	f := strings.Fields(string(data))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
})

// InUserNS reports whether this process runs in a user namespace other
// than the initial one (builder run by a user, re-executed as root of its
// own namespace; or root of a pod's namespace). There, overlayfs keeps its
// whiteouts and opaque dirs as user.overlay.* xattrs (the userxattr mount
// option), since trusted.* is out of reach.
func InUserNS() bool { return userNS() }

var singleID = sync.OnceValue(func() bool {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	f := strings.Fields(lines[0])
	return len(lines) == 1 && len(f) == 3 && f[2] == "1"
})

// SingleID reports whether this process's user namespace maps one id
// only (no subordinate ids): files of other owners cannot exist in it.
func SingleID() bool { return singleID() }
