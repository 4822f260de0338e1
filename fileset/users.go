package fileset

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
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
	Groups   []int  // supplementary groups (from /etc/group members), nil if none
	Home     string // from /etc/passwd; "/" if unknown, "/root" for an unknown uid 0
}

// ResolveUser resolves a USER spec "user[:group]" (names or ids; "" is
// root) against the rootfs, like runc's GetExecUser: unknown names are
// errors, unknown ids are fine. A missing /etc/passwd or /etc/group has
// no entries.
func ResolveUser(r FileReader, spec string) (User, error) {
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	users, err := readPasswd(r)
	if err != nil {
		return User{}, fmt.Errorf("read /etc/passwd: %w", err)
	}
	groups, err := readGroup(r)
	if err != nil {
		return User{}, fmt.Errorf("read /etc/group: %w", err)
	}
	u := User{Home: "/"}
	name := ""
	if id, err := strconv.Atoi(userPart); err == nil {
		u.UID = id
		for _, p := range users {
			if p.uid == id {
				u.GID, u.Home, name = p.gid, p.home, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range users {
			if p.name == userPart {
				u.UID, u.GID, u.Home, name, found = p.uid, p.gid, p.home, p.name, true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(groupPart); err == nil {
			u.GID = id
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return User{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	} else if name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.GID {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	if u.UID == 0 && u.Home == "/" && name == "" {
		u.Home = "/root"
	}
	return u, nil
}

// ChownIDs resolves a --chown value "user[:group]" (names or ids) to
// uid/gid through the rootfs' /etc/passwd and /etc/group. With only a
// user, the gid is the user's primary group when the user is a name, else
// the same id. Unknown names are errors, unknown ids are fine.
func ChownIDs(r FileReader, spec string) (uid, gid int, err error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if id, err := strconv.Atoi(userPart); err == nil {
		uid, gid = id, id
	} else {
		users, err := readPasswd(r)
		if err != nil {
			return 0, 0, err
		}
		found := false
		for _, p := range users {
			if p.name == userPart {
				uid, gid, found = p.uid, p.gid, true
				break
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("--chown=%s: unable to find user %s in /etc/passwd", spec, userPart)
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
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return 0, 0, fmt.Errorf("--chown=%s: unable to find group %s in /etc/group", spec, groupPart)
			}
		}
	}
	return uid, gid, nil
}
