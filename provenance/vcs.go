package provenance

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
)

// GitVCS returns the git remote and commit of the work tree dir is in, as
// buildx sends them (vcs:source, vcs:revision), or nil when dir is not in
// a git work tree or git is not installed. The remote is origin's URL with
// any password masked ("" when there is no origin).
func GitVCS(ctx context.Context, dir string) *VCS {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_OPTIONAL_LOCKS=0")
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	if git("rev-parse", "--is-inside-work-tree") != "true" {
		return nil
	}
	rev := git("rev-parse", "HEAD")
	if rev == "" {
		return nil // no commit yet
	}
	return &VCS{Source: redact(git("config", "--get", "remote.origin.url")), Revision: rev}
}

// redact masks the password of a URL's user info (a token in an https
// remote) as BuildKit does ("xxxxx"); other forms (scp-like
// git@host:repo) are kept as they are.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Version is builder's version as the binary knows it: the module version,
// or the VCS revision it was built from.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = s.Value
		}
	}
	return v
}
