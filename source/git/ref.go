// Package git fetches git sources (ADD of a git URL, a git build context)
// with Debian's git binary, as BuildKit does, and keeps each fetched tree
// by commit so a rebuild of the same commit needs no network.
//
// A source is identified in two steps, kept apart like a step's key and its
// work elsewhere in builder:
//
//	r, ok, err := git.Parse("https://host/repo.git#v1.2:sub") // no I/O
//	c, err := st.Resolve(ctx, r, auth)   // one ls-remote: the commit
//	dir, err := st.Tree(ctx, r, c, auth) // the checkout, fetched if missing
//
// Resolve costs one ls-remote (none when the ref is a full commit): a build
// computes its cache key from the commit and calls Tree only on a miss.
// Tree fetches exactly the ref, shallow (--depth=1), with submodules, into
// tmp/ and renames the finished checkout into trees/, so a killed fetch
// leaves nothing that a later build would trust.
//
// Repositories are hostile: git runs with no hooks, no system or global
// config, no terminal prompt, and the file and ext protocols refused;
// callers read a tree only through fileset (no symlink leaves it).
//
// Layout under the root given to Open (<state>/cache/git):
//
//	trees/<sha256>/   one checkout per (remote, commit, submodules, .git kept)
//	tmp/              fetches in progress; removed by Open when stale
package git

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Ref is a git source as a Dockerfile or a --build-context names it.
type Ref struct {
	Remote     string // the repository URL, without fragment and query
	Ref        string // branch, tag, "refs/..." or commit; "" is the default branch
	Subdir     string // a clean relative path inside the repository, "" for all
	KeepGitDir bool   // keep .git in the tree (ADD --keep-git-dir)
	Checksum   string // the commit (or a prefix of it) the ref must resolve to
	Submodules bool   // fetch submodules (the default)
}

// ErrChecksum is returned (wrapped) when the ref resolves to another
// commit than the expected checksum.
var ErrChecksum = errors.New("git checksum mismatch")

var (
	// scpRE is git's scp-like ssh syntax, as BuildKit reads it:
	// user@host:path[?query][#fragment].
	scpRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$`)
	})
	hexRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-fA-F0-9]+$`) })
)

// Parse reads a git URL the way BuildKit's Dockerfile frontend does:
// http(s) URLs whose path ends in ".git", git://, ssh:// and
// user@host:path, with an optional "#ref:subdir" fragment and the
// ref/tag/branch/subdir/checksum/keep-git-dir/submodules query. ok is false
// when s is not a git URL; err is set when it is one, but a bad one.
func Parse(s string) (r Ref, ok bool, err error) {
	var q url.Values
	var frag string
	// A build's context is most often a directory: neither check below
	// compiles a regexp for one without "://" or "@".
	switch proto := scheme(s); {
	case proto != "":
		scheme := strings.ToLower(strings.TrimSuffix(proto, "://"))
		if scheme != "http" && scheme != "https" && scheme != "git" && scheme != "ssh" {
			return Ref{}, false, nil
		}
		u, err := url.Parse(s)
		if err != nil {
			return Ref{}, false, nil
		}
		if (scheme == "http" || scheme == "https") && !strings.HasSuffix(u.Path, ".git") {
			return Ref{}, false, nil
		}
		q, frag = u.Query(), u.Fragment
		u.Fragment, u.RawFragment, u.RawQuery = "", "", ""
		r.Remote = u.String()
	case strings.Contains(s, "@") && scpRE().MatchString(s):
		m := scpRE().FindStringSubmatch(s)
		if m[4] != "" {
			if q, err = url.ParseQuery(m[4]); err != nil {
				return Ref{}, true, fmt.Errorf("git URL %s: bad query: %w", s, err)
			}
		}
		frag = m[5]
		r.Remote = m[1] + "@" + m[2] + ":" + m[3]
	default:
		return Ref{}, false, nil
	}
	r.Submodules = true
	if frag != "" {
		ref, sub, _ := strings.Cut(frag, ":")
		r.Ref, r.Subdir = ref, cleanSubdir(sub)
	}
	if err := r.query(q); err != nil {
		return Ref{}, true, fmt.Errorf("git URL %s: %w", Redact(s), err)
	}
	if r.Checksum != "" && !hexRE().MatchString(r.Checksum) {
		return Ref{}, true, fmt.Errorf("git URL %s: invalid checksum %q, expected a hex commit hash", Redact(s), r.Checksum)
	}
	return r, true, nil
}

// scheme is the "proto://" s starts with, letters and digits before
// "://", or "".
func scheme(s string) string {
	i := strings.Index(s, "://")
	if i <= 0 {
		return ""
	}
	for _, c := range []byte(s[:i]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return ""
		}
	}
	return s[:i+3]
}

func cleanSubdir(s string) string { return strings.TrimPrefix(path.Join("/", s), "/") }

// query applies BuildKit's URL query keys.
func (r *Ref) query(q url.Values) error {
	var tag, branch string
	for k, vs := range q {
		if len(vs) > 1 {
			return fmt.Errorf("query %q has multiple values", k)
		}
		v := ""
		if len(vs) == 1 {
			v = vs[0]
		}
		flag := func() (bool, error) {
			if v == "" {
				return true, nil
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, fmt.Errorf("invalid %s value: %q", k, v)
			}
			return b, nil
		}
		var err error
		switch k {
		case "ref":
			if r.Ref != "" && r.Ref != v {
				return fmt.Errorf("ref conflicts: %q vs %q", r.Ref, v)
			}
			r.Ref = v
		case "tag":
			tag = v
		case "branch":
			branch = v
		case "subdir":
			if c := cleanSubdir(v); r.Subdir != "" && r.Subdir != c {
				return fmt.Errorf("subdir conflicts: %q vs %q", r.Subdir, v)
			}
			r.Subdir = cleanSubdir(v)
		case "checksum", "commit":
			r.Checksum = v
		case "keep-git-dir":
			r.KeepGitDir, err = flag()
		case "submodules":
			r.Submodules, err = flag()
		default:
			return fmt.Errorf("unexpected query %q", k)
		}
		if err != nil {
			return err
		}
		if v == "" && k != "keep-git-dir" && k != "submodules" {
			return fmt.Errorf("query %q has no value", k)
		}
	}
	for _, p := range []struct{ v, prefix string }{{tag, "refs/tags/"}, {branch, "refs/heads/"}} {
		if p.v == "" {
			continue
		}
		if tag != "" && branch != "" {
			return errors.New("branch conflicts with tag")
		}
		full := p.prefix + strings.TrimPrefix(p.v, p.prefix)
		if r.Ref != "" && r.Ref != full {
			return fmt.Errorf("ref conflicts: %q vs %q", r.Ref, full)
		}
		r.Ref = full
	}
	return nil
}

// Host is the host of the remote ("" when it has none), which picks the
// GIT_AUTH_TOKEN.<host> secret.
func (r Ref) Host() string {
	if m := scpRE().FindStringSubmatch(r.Remote); m != nil && scheme(r.Remote) == "" {
		return m[2]
	}
	u, err := url.Parse(r.Remote)
	if err != nil {
		return ""
	}
	return u.Host
}

// isHTTP reports a remote that takes an Authorization header.
func (r Ref) isHTTP() bool {
	return strings.HasPrefix(r.Remote, "https://") || strings.HasPrefix(r.Remote, "http://")
}

// String is the source as BuildKit prints it: remote#ref:subdir, with
// any password in the URL redacted.
func (r Ref) String() string {
	s := Redact(r.Remote)
	if r.Ref != "" || r.Subdir != "" {
		s += "#" + r.Ref
		if r.Subdir != "" {
			s += ":" + r.Subdir
		}
	}
	return s
}

// Redact hides the password of a URL.
func Redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, set := u.User.Password(); set {
			return u.Redacted()
		}
	}
	return s
}

// IsHex reports a non-empty hex string (a commit or a prefix of one).
func IsHex(s string) bool { return hexRE().MatchString(s) }

// IsCommit reports a full SHA-1 or SHA-256 commit id.
func IsCommit(s string) bool { return (len(s) == 40 || len(s) == 64) && hexRE().MatchString(s) }
