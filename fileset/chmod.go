package fileset

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/builderdev/builder/internal/fsmode"
)

// Chmod maps a copied entry's mode to its new mode (type bits kept).
type Chmod func(fs.FileMode) fs.FileMode

// ParseChmod reads a --chmod value: octal ("0755", "4755") or symbolic as
// chmod(1) and BuildKit take it ("u=rwx,go=rx", "a+X", "g-w"). It returns
// nil for "" (modes kept).
func ParseChmod(s string) (Chmod, error) {
	if s == "" {
		return nil, nil
	}
	if n, err := strconv.ParseUint(s, 8, 32); err == nil {
		if n > 0o7777 {
			return nil, fmt.Errorf("invalid --chmod=%s: octal mode above 07777", s)
		}
		bits := FromOctal(uint32(n))
		return func(m fs.FileMode) fs.FileMode { return m.Type() | bits }, nil
	}
	var clauses []func(fs.FileMode) fs.FileMode
	for _, c := range strings.Split(s, ",") {
		f, err := parseClause(c)
		if err != nil {
			return nil, fmt.Errorf("invalid --chmod=%s: %w (want an octal mode like 0755 or a symbolic one like u=rwx,go=rx)", s, err)
		}
		clauses = append(clauses, f)
	}
	return func(m fs.FileMode) fs.FileMode {
		for _, f := range clauses {
			m = f(m)
		}
		return m
	}, nil
}

// FromOctal converts Unix permission bits (0o7777: setuid, setgid, sticky
// and rwx) to fs.FileMode bits.
func FromOctal(n uint32) fs.FileMode { return fsmode.FromUnix(n) }

// parseClause reads one "[ugoa]*[+-=][rwxXst]*" clause (several op/perm
// pairs may follow the who part: "u+x-w").
func parseClause(c string) (func(fs.FileMode) fs.FileMode, error) {
	i := 0
	var who uint32
	for ; i < len(c) && strings.IndexByte("ugoa", c[i]) >= 0; i++ {
		who |= map[byte]uint32{'u': 0o4700, 'g': 0o2070, 'o': 0o1007, 'a': 0o7777}[c[i]]
	}
	if who == 0 {
		who = 0o7777 // chmod(1) would apply the umask; the build has none
	}
	type op struct {
		kind  byte
		perms string
	}
	var ops []op
	for i < len(c) {
		if strings.IndexByte("+-=", c[i]) < 0 {
			return nil, fmt.Errorf("bad clause %q", c)
		}
		o := op{kind: c[i]}
		i++
		for ; i < len(c) && strings.IndexByte("rwxXst", c[i]) >= 0; i++ {
			o.perms += string(c[i])
		}
		ops = append(ops, o)
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("bad clause %q", c)
	}
	return func(m fs.FileMode) fs.FileMode {
		cur := fsmode.ToUnix(m)
		for _, o := range ops {
			var bits uint32
			for _, p := range o.perms {
				switch p {
				case 'r':
					bits |= 0o444
				case 'w':
					bits |= 0o222
				case 'x':
					bits |= 0o111
				case 'X':
					if m.IsDir() || cur&0o111 != 0 {
						bits |= 0o111
					}
				case 's':
					bits |= 0o6000
				case 't':
					bits |= 0o1000
				}
			}
			bits &= who
			switch o.kind {
			case '+':
				cur |= bits
			case '-':
				cur &^= bits
			case '=':
				cur = cur&^(who&0o7777) | bits
			}
		}
		return m.Type() | FromOctal(cur)
	}, nil
}
