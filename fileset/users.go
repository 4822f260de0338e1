package fileset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// FileReader reads files of an image rootfs (ViewFS is one).
type FileReader interface {
	// ReadFile reads the file p, following symlinks inside the rootfs; a
	// missing file is an error wrapping fs.ErrNotExist.
	ReadFile(p string) ([]byte, error)
}

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

func readPasswd(r FileReader) ([]passwdEntry, error) {
	data, err := r.ReadFile("/etc/passwd")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []passwdEntry
	for _, f := range colonLines(data, 7) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	}
	return out, nil
}

func readGroup(r FileReader) ([]groupEntry, error) {
	data, err := r.ReadFile("/etc/group")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []groupEntry
	for _, f := range colonLines(data, 4) {
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	}
	return out, nil
}

// colonLines splits non-comment lines of /etc/passwd-like files into n fields.
func colonLines(data []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		out = append(out, f)
	}
	return out
}

// User is a resolved USER: what a process runs as.
type User struct {
	UID, GID int
	// Groups is the process's supplementary group list as the runtime
	// sets it (setgroups): it always holds GID, first unless the group
	// file already lists it among the user's groups.
	Groups []int
	Home   string // HOME when the env has none: see ResolveUser
}

// ResolveUser resolves a USER spec "user[:group]" (names or ids; "" is
// root) against the rootfs exactly as BuildKit's runc executor does
// (executor/oci GetUser, then moby/sys/user GetExecUser, then
// ensureAdditionalGids):
//   - "uid:gid" with both parts numeric (or "root") takes a fast path:
//     no file is read and there are no supplementary groups;
//   - otherwise the first passwd entry matching the uid (numeric user)
//     or the name wins; an unknown numeric uid keeps gid 0; an unknown
//     name is an error;
//   - an explicit group (name or id; the first group entry matching)
//     sets the gid and drops supplementary groups; an unknown group name
//     is an error; an unknown numeric gid is fine;
//   - with no group and a matched passwd entry, the supplementary groups
//     are every group listing the entry's name, in file order;
//   - the gid is prepended to the groups unless already among them.
//
// Home is what runc puts in HOME: the home of the first passwd entry
// whose uid is the resolved uid, "/" when there is none. A missing (or
// non-regular) /etc/passwd or /etc/group has no entries; the default
// user ("") never fails.
func ResolveUser(r FileReader, spec string) (User, error) {
	isDefault := spec == ""
	if isDefault {
		spec = "0"
	}
	passwd, err := readUserFile(r, "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	var uid, gid int
	var sgids []int
	if fu, fg, ok := fastUIDGID(spec); ok {
		uid, gid = fu, fg
	} else {
		group, err := readUserFile(r, "/etc/group")
		if err != nil {
			return User{}, err
		}
		uid, gid, sgids, err = execUser(spec, passwd, group)
		if err != nil {
			if !isDefault {
				return User{}, err
			}
			uid, gid, sgids = 0, 0, nil
		}
	}
	groups := sgids
	if !slices.Contains(groups, gid) {
		groups = append([]int{gid}, sgids...)
	}
	home := "/"
	if passwd != nil {
		if ents, err := execPasswd(passwd); err == nil {
			for _, p := range ents {
				if p.uid == uid {
					home = p.home
					break
				}
			}
		}
	}
	return User{UID: uid, GID: gid, Groups: groups, Home: home}, nil
}

// readUserFile reads /etc/passwd or /etc/group; nil when it does not
// exist or is not a regular file (BuildKit opens neither then).
func readUserFile(r FileReader, p string) ([]byte, error) {
	data, err := r.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// fastUIDGID is BuildKit's ParseUIDGID: both parts given, each a uint32
// or "root".
func fastUIDGID(spec string) (uid, gid int, ok bool) {
	u, g, found := strings.Cut(spec, ":")
	if !found {
		return 0, 0, false
	}
	parse := func(s string) (int, bool) {
		if s == "root" {
			return 0, true
		}
		n, err := strconv.ParseUint(s, 10, 32)
		return int(n), err == nil
	}
	uid, ok1 := parse(u)
	gid, ok2 := parse(g)
	return uid, gid, ok1 && ok2
}

const maxID = 1<<31 - 1

var errIDRange = fmt.Errorf("uids and gids must be in range 0-%d", maxID)

// parseNumericID: (id, isNumeric, error), as moby/sys/user's parseNumeric.
func parseNumericID(s string) (int, bool, error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, true, errIDRange
		}
		return 0, false, nil
	}
	if n < 0 || n > maxID {
		return 0, true, errIDRange
	}
	return n, true, nil
}

// execPasswd parses passwd data the way GetExecUser does: lines trimmed,
// blank lines skipped (comments are not), missing fields empty and
// unparsable numbers 0.
func execPasswd(data []byte) ([]passwdEntry, error) {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		var p passwdEntry
		p.name = f[0]
		if len(f) > 2 {
			p.uid, _ = strconv.Atoi(f[2])
		}
		if len(f) > 3 {
			p.gid, _ = strconv.Atoi(f[3])
		}
		if len(f) > 5 {
			p.home = f[5]
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// execGroup parses group data the way GetExecUser does: lines trimmed,
// blank lines and comments skipped, unparsable gids 0.
func execGroup(data []byte) ([]groupEntry, error) {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		var g groupEntry
		g.name = f[0]
		if len(f) > 2 {
			g.gid, _ = strconv.Atoi(f[2])
		}
		if len(f) > 3 && f[3] != "" {
			g.members = strings.Split(f[3], ",")
		}
		out = append(out, g)
	}
	return out, sc.Err()
}

// execUser is moby/sys/user GetExecUser with zero defaults; passwd and
// group are nil when the file is missing.
func execUser(spec string, passwd, group []byte) (uid, gid int, sgids []int, err error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	groupArg, _, _ = strings.Cut(groupArg, ":")
	uidArg, isUID, err := parseNumericID(userArg)
	if err != nil {
		return 0, 0, nil, err
	}
	gidArg, isGID, err := parseNumericID(groupArg)
	if err != nil {
		return 0, 0, nil, err
	}
	matched := ""
	found := false
	if passwd != nil {
		ents, err := execPasswd(passwd)
		if err != nil {
			if userArg == "" {
				userArg = "0"
			}
			return 0, 0, nil, fmt.Errorf("unable to find user %s: %w", userArg, err)
		}
		for _, p := range ents {
			if (userArg == "" && p.uid == 0) || (userArg != "" && isUID && p.uid == uidArg) || (userArg != "" && !isUID && p.name == userArg) {
				uid, gid, matched, found = p.uid, p.gid, p.name, true
				break
			}
		}
	}
	if !found && userArg != "" {
		if !isUID {
			return 0, 0, nil, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userArg)
		}
		uid = uidArg
	}
	if groupArg == "" && matched == "" {
		return uid, gid, nil, nil
	}
	var ents []groupEntry
	if group != nil {
		if ents, err = execGroup(group); err != nil {
			return 0, 0, nil, fmt.Errorf("unable to find groups for spec %s: %w", matched, err)
		}
	}
	if groupArg != "" {
		for _, g := range ents {
			if (isGID && g.gid == gidArg) || (!isGID && g.name == groupArg) {
				return uid, g.gid, nil, nil
			}
		}
		if !isGID {
			return 0, 0, nil, fmt.Errorf("unable to find group %s: no matching entries in group file", groupArg)
		}
		return uid, gidArg, nil, nil
	}
	for _, g := range ents {
		if slices.Contains(g.members, matched) {
			sgids = append(sgids, g.gid)
		}
	}
	return uid, gid, sgids, nil
}

// ChownIDs resolves a --chown value "user[:group]" (names or ids) to
// uid/gid through the rootfs' /etc/passwd and /etc/group, as BuildKit does
// (solver/llbsolver/ops/user_linux.go readUser): with only a user, the gid
// is the user's primary group when the user is a name, else the same id. A
// name that is not found (or a missing file) is not an error: an unknown
// user is 0:0, an unknown group leaves the gid as the user part gave it.
// Only a rootfs with no tree at all (a scratch stage; r reports Empty)
// makes a name an error: there is no file to look it up in.
func ChownIDs(r FileReader, spec string) (uid, gid int, err error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if e, ok := r.(interface{ Empty() bool }); ok && e.Empty() {
		names := []string{userPart}
		if hasGroup {
			names = append(names, groupPart)
		}
		for _, name := range names {
			if _, err := strconv.Atoi(name); err != nil {
				return 0, 0, fmt.Errorf("--chown=%s: unable to find %s: the stage has no files (FROM scratch)", spec, name)
			}
		}
	}
	if id, err := strconv.Atoi(userPart); err == nil {
		uid, gid = id, id
	} else {
		users, err := readPasswd(r)
		if err != nil {
			return 0, 0, err
		}
		for _, p := range users {
			if p.name == userPart {
				uid, gid = p.uid, p.gid
				break
			}
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(groupPart); err == nil {
			gid = id
		} else {
			groups, err := readGroup(r)
			if err != nil {
				return 0, 0, err
			}
			for _, g := range groups {
				if g.name == groupPart {
					gid = g.gid
					break
				}
			}
		}
	}
	return uid, gid, nil
}
