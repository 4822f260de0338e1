package git

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/internal/dirsize"
)

// Store keeps fetched trees under <state>/cache/git. It is safe for
// concurrent use, also by several processes: two fetches of one tree both
// work, and the first rename wins.
type Store struct{ root string }

// staleTmp is how old a fetch dir in tmp/ must be before Open removes it:
// younger ones may belong to a concurrent builder.
const staleTmp = time.Hour

// Open creates the store's dirs under root and removes stale fetches.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open git store: %w", err)
	}
	s := &Store{root: abs}
	for _, d := range []string{s.treesDir(), s.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open git store: %w", err)
		}
	}
	if ents, err := os.ReadDir(s.tmpDir()); err == nil {
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTmp {
				_ = os.RemoveAll(filepath.Join(s.tmpDir(), e.Name()))
			}
		}
	}
	return s, nil
}

func (s *Store) treesDir() string { return filepath.Join(s.root, "trees") }
func (s *Store) tmpDir() string   { return filepath.Join(s.root, "tmp") }

// Auth is what git may present to a remote.
type Auth struct {
	// Secrets are the build's --secret values. As in BuildKit, an https
	// remote gets GIT_AUTH_HEADER.<host>, GIT_AUTH_TOKEN.<host>,
	// GIT_AUTH_HEADER or GIT_AUTH_TOKEN, the first that is set, as an
	// Authorization header (a token as x-access-token basic auth). An ssh
	// remote uses SSH_AUTH_SOCK / GIT_SSH_COMMAND of builder's environment.
	Secrets map[string][]byte
}

// header is the Authorization header value for r, or "".
func (a Auth) header(r Ref) string {
	if !r.isHTTP() {
		return ""
	}
	host := r.Host()
	for _, c := range []struct {
		id    string
		token bool
	}{{"GIT_AUTH_HEADER." + host, false}, {"GIT_AUTH_TOKEN." + host, true}, {"GIT_AUTH_HEADER", false}, {"GIT_AUTH_TOKEN", true}} {
		v, ok := a.Secrets[c.id]
		if !ok {
			continue
		}
		if c.token {
			return "basic " + base64.StdEncoding.EncodeToString([]byte("x-access-token:"+strings.TrimSpace(string(v))))
		}
		return strings.TrimSpace(string(v))
	}
	return ""
}

// env is git's environment: no system or global config, no prompt, no
// hooks, no file or ext protocol, and the Authorization header for r's
// remote only, passed as config in the environment (never on a command
// line that other users can read).
func (a Auth) env(r Ref) []string {
	cfg := [][2]string{
		{"core.hooksPath", os.DevNull}, {"protocol.file.allow", "never"}, {"protocol.ext.allow", "never"},
		{"core.fsmonitor", "false"}, {"credential.helper", ""}, {"advice.detachedHead", "false"},
		{"init.defaultBranch", "main"}, {"submodule.recurse", "false"},
	}
	if h := a.header(r); h != "" {
		cfg = append(cfg, [2]string{"http." + r.Remote + ".extraheader", "Authorization: " + h})
	}
	env := []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull,
		"LC_ALL=C", "GIT_CONFIG_COUNT=" + strconv.Itoa(len(cfg))}
	for i, kv := range cfg {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	for _, k := range []string{"PATH", "HOME", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "GIT_SSH", "http_proxy", "https_proxy",
		"no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if os.Getenv("GIT_SSH_COMMAND") == "" && os.Getenv("GIT_SSH") == "" {
		env = append(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	return env
}

// run runs git in dir and returns its stdout; a failure says what git
// printed on stderr.
func run(ctx context.Context, env []string, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 5 * time.Second
	ownGroup(cmd)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 512 {
			msg = msg[:512] + "..."
		}
		if msg != "" {
			return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
		}
		return nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return out.Bytes(), nil
}

// Resolve returns the commit r names now: one ls-remote, or none when the
// ref is a full commit id. The commit must match r.Checksum when set.
func (s *Store) Resolve(ctx context.Context, r Ref, a Auth) (string, error) {
	if IsCommit(r.Ref) {
		return r.Ref, r.check(r.Ref, "")
	}
	pats := []string{r.Ref, r.Ref + "^{}"}
	if r.Ref == "" {
		pats = []string{"HEAD"}
	}
	out, err := run(ctx, a.env(r), s.tmpDir(), append([]string{"ls-remote", "--", r.Remote}, pats...)...)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", r, err)
	}
	commit, tagged := pick(string(out), r.Ref)
	if commit == "" {
		return "", fmt.Errorf("resolve %s: the repository has no ref %q", r, r.Ref)
	}
	if !IsCommit(commit) {
		return "", fmt.Errorf("resolve %s: invalid commit %q", r, commit)
	}
	return commit, r.check(commit, tagged)
}

// pick finds ref's commit in ls-remote output as git checkout does:
// an exact ref, else a branch, else a tag (an annotated one peeled).
// tagged is the tag object of an annotated tag.
func pick(out, ref string) (commit, tagged string) {
	if ref == "" {
		ref = "HEAD"
	}
	exact := "refs/" + strings.TrimPrefix(ref, "refs/")
	if ref == "HEAD" {
		exact = "HEAD"
	}
	head, tag := "refs/heads/"+strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/"+strings.TrimPrefix(ref, "refs/tags/")
	var sha, headSha, tagSha, peeled string
	for line := range strings.SplitSeq(out, "\n") {
		lsha, lref, _ := strings.Cut(strings.TrimSpace(line), "\t")
		switch lref {
		case head:
			headSha = lsha
		case tag:
			tagSha = lsha
		case tag + "^{}":
			peeled = lsha
		case exact:
			sha = lsha
		}
	}
	switch {
	case sha != "":
		return sha, ""
	case headSha != "":
		return headSha, ""
	case peeled != "":
		return peeled, tagSha
	}
	return tagSha, ""
}

// check compares a resolved commit (or the annotated tag naming it) with
// the expected checksum.
func (r Ref) check(commit, tagged string) error {
	if r.Checksum == "" {
		return nil
	}
	c := strings.ToLower(r.Checksum)
	if strings.HasPrefix(commit, c) || tagged != "" && strings.HasPrefix(tagged, c) {
		return nil
	}
	return fmt.Errorf("%w: %s is commit %s, expected %s", ErrChecksum, r, commit, r.Checksum)
}

// treeName names the checkout of r at commit.
func treeName(r Ref, commit string) string {
	b, _ := json.Marshal(struct {
		V          string `json:"v"`
		Remote     string `json:"remote"`
		Commit     string `json:"commit"`
		Submodules bool   `json:"submodules"`
		KeepGitDir bool   `json:"keepGitDir"`
	}{"builder.git-tree.v1", r.Remote, commit, r.Submodules, r.KeepGitDir})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Tree returns the host dir of r's checkout at commit (the whole
// repository: the caller selects r.Subdir in it), fetching it when the
// store does not have it yet. The dir is read-only to the caller.
func (s *Store) Tree(ctx context.Context, r Ref, commit string, a Auth) (string, error) {
	dir := filepath.Join(s.treesDir(), treeName(r, commit))
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	work, err := os.MkdirTemp(s.tmpDir(), "fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	t := filepath.Join(work, "t")
	if err := s.fetch(ctx, r, commit, a.env(r), t); err != nil {
		return "", fmt.Errorf("fetch %s: %w", r, err)
	}
	if err := syncTree(t); err != nil {
		return "", fmt.Errorf("fetch %s: %w", r, err)
	}
	if err := os.Rename(t, dir); err != nil {
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return dir, nil // a concurrent fetch of the same tree won
		}
		return "", fmt.Errorf("fetch %s: %w", r, err)
	}
	if d, err := os.Open(s.treesDir()); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return dir, nil
}

// fetch makes the checkout in t: a new repository, a shallow fetch of
// exactly the ref (its commit directly when the ref moved since Resolve,
// or is a commit), the checkout, the submodules.
func (s *Store) fetch(ctx context.Context, r Ref, commit string, env []string, t string) error {
	if _, err := run(ctx, env, filepath.Dir(t), "init", "--quiet", "--template=", t); err != nil {
		return err
	}
	if _, err := run(ctx, env, t, "remote", "add", "origin", r.Remote); err != nil {
		return err
	}
	got := ""
	if !IsCommit(r.Ref) {
		ref := r.Ref
		if ref == "" {
			ref = "HEAD"
		}
		if _, err := run(ctx, env, t, "fetch", "--quiet", "--depth=1", "--no-tags", "origin", "--", ref); err != nil {
			return err
		}
		out, err := run(ctx, env, t, "rev-parse", "--verify", "--quiet", "FETCH_HEAD^{commit}")
		if err != nil {
			return err
		}
		got = strings.TrimSpace(string(out))
	}
	if got != commit {
		// The ref moved after Resolve (or is a commit): fetch the commit
		// the cache key names.
		if _, err := run(ctx, env, t, "fetch", "--quiet", "--depth=1", "--no-tags", "origin", "--", commit); err != nil {
			return fmt.Errorf("commit %s: %w", commit, err)
		}
	}
	if _, err := run(ctx, env, t, "checkout", "--quiet", "--detach", commit); err != nil {
		return err
	}
	if fi, err := os.Lstat(filepath.Join(t, ".gitmodules")); r.Submodules && err == nil && fi.Mode().IsRegular() {
		if _, err := run(ctx, env, t, "submodule", "update", "--quiet", "--init", "--recursive", "--depth=1"); err != nil {
			return err
		}
	}
	if r.KeepGitDir {
		return nil
	}
	// Git never checks out a path named .git: every one is its own (the
	// repository, the gitlinks of submodules).
	return filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" && p != t {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
}

// syncTree flushes every file and dir of t to disk before the rename that
// publishes it.
func syncTree(t string) error {
	return filepath.WalkDir(t, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() && !d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// Usage returns the number of trees kept and their size in bytes.
func (s *Store) Usage() (int, int64, error) {
	ents, err := os.ReadDir(s.treesDir())
	if err != nil {
		return 0, 0, err
	}
	var size int64
	for _, e := range ents {
		size += dirsize.Of(filepath.Join(s.treesDir(), e.Name()))
	}
	return len(ents), size, nil
}

// Remove deletes every kept tree and fetch in progress; call it only while
// no build runs (prune, under the store's exclusive lock). It returns what
// it freed.
func (s *Store) Remove() (int, int64, error) {
	n, size, err := s.Usage()
	if err != nil {
		return 0, 0, err
	}
	for _, d := range []string{s.treesDir(), s.tmpDir()} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return 0, 0, err
		}
		for _, e := range ents {
			if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
				return 0, 0, fmt.Errorf("remove git tree: %w", err)
			}
		}
	}
	return n, size, nil
}
