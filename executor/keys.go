package executor

import (
	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
)

// What identifies a step, kept apart from doing it (fsStep.produce): one
// struct per kind of step, hashed by cache.Key as canonical JSON. Every
// input is a named field, never pieces glued with separators. Changing a
// struct's shape changes keys: bump cache.Version with it.

// stepKey is what cache.Key hashes for a step on top of its parent's key.
type stepKey struct {
	Step  any      `json:"step"`  // runKey, copyKey or workdirKey
	Layer layerKey `json:"layer"` // what shapes the layer bytes beyond the step
}

// layerKey: a record names one blob, so zstd layers and layers clamped to
// SOURCE_DATE_EPOCH get their own records.
type layerKey struct {
	Compression layer.Compression `json:"compression,omitempty"` // "" for gzip
	Epoch       int64             `json:"epoch,omitempty"`       // clock.keyEpoch
}

// runKey identifies a RUN.
type runKey struct {
	Op        string            `json:"op"`               // "RUN"
	Args      []string          `json:"args"`             // argv
	Script    string            `json:"script,omitempty"` // a shebang heredoc run as a file
	Env       []string          `json:"env,omitempty"`
	User      string            `json:"user,omitempty"`
	Workdir   string            `json:"workdir,omitempty"`
	Shell     []string          `json:"shell,omitempty"`
	BuildArgs map[string]string `json:"buildArgs,omitempty"` // the ARGs in parser.Vars
	Network   string            `json:"network,omitempty"`
	Mounts    []mountKey        `json:"mounts,omitempty"`
	Insecure  bool              `json:"insecure,omitempty"` // --security=insecure: no seccomp, every capability
	Platform  string            `json:"platform,omitempty"` // what the binaries run for (execPlatform)
}

// mountKey identifies one RUN --mount. Cache, tmpfs and secret mounts
// count by their shape only (their content is not an input, as in
// BuildKit); a bind mount by the digest of what it shows.
type mountKey struct {
	Type     string        `json:"type"` // cache, tmpfs, bind, secret
	Target   string        `json:"target,omitempty"`
	ID       string        `json:"id,omitempty"` // cache or secret id
	UID      int           `json:"uid,omitempty"`
	GID      int           `json:"gid,omitempty"`
	Mode     uint32        `json:"mode,omitempty"`
	ReadOnly bool          `json:"readOnly,omitempty"`
	Options  []string      `json:"options,omitempty"` // tmpfs
	From     digest.Digest `json:"from,omitempty"`    // bind from a stage or image: its key
	Source   string        `json:"source,omitempty"`  // bind: the path in From
	Content  digest.Digest `json:"content,omitempty"` // bind from the context: what it shows
	Env      string        `json:"env,omitempty"`     // secret exposed as this variable
}

// copyKey identifies a COPY or ADD.
type copyKey struct {
	Op        string `json:"op"` // "COPY" or "ADD"
	Chown     string `json:"chown,omitempty"`
	Chmod     string `json:"chmod,omitempty"`
	Dest      string `json:"dest"`
	DestIsDir bool   `json:"destIsDir,omitempty"`
	Parents   bool   `json:"parents,omitempty"`
	User      string `json:"user,omitempty"` // resolves --chown names
	// From is the key of the source stage or image; with it, Srcs and
	// Excludes identify the selection (nothing is read on a hit).
	From     digest.Digest `json:"from,omitempty"`
	Srcs     []string      `json:"srcs,omitempty"`
	Excludes []string      `json:"excludes,omitempty"`
	// Sources is the content digest of the context files selected.
	Sources digest.Digest `json:"sources,omitempty"`
	Items   []itemKey     `json:"items,omitempty"`
	// Git maps each git source (remote#ref:subdir) to the commit its ref
	// resolved to: a moved branch is a miss that names the new commit.
	Git map[string]string `json:"git,omitempty"`
}

// itemKey is one source of a COPY/ADD that the context digest does not cover.
type itemKey struct {
	Kind    string        `json:"kind"` // "heredoc", "url", "archive", "stage", "git"
	Dest    string        `json:"dest,omitempty"`
	Src     string        `json:"src,omitempty"` // archive or stage path
	URL     string        `json:"url,omitempty"`
	Content digest.Digest `json:"content,omitempty"` // heredoc or download bytes
	Mtime   string        `json:"mtime,omitempty"`   // download
	// KeepGitDir: a git source keeps its .git dir; NoSubmodules: it
	// leaves its submodules out.
	KeepGitDir   bool `json:"keepGitDir,omitempty"`
	NoSubmodules bool `json:"noSubmodules,omitempty"`
}

// workdirKey identifies a WORKDIR that creates its dir.
type workdirKey struct {
	Op   string `json:"op"` // "WORKDIR"
	Path string `json:"path"`
	User string `json:"user,omitempty"` // owns the dir
}

// stepKey is what identifies a step with identity id in this build.
func (bd *build) stepKey(id any) stepKey {
	lk := layerKey{Epoch: bd.clock.keyEpoch()}
	if bd.opts.Compression == layer.Zstd {
		lk.Compression = layer.Zstd
	}
	return stepKey{Step: id, Layer: lk}
}

// key is the cache key of a step with identity id on top of parent.
func (bd *build) key(parent digest.Digest, id any) digest.Digest {
	return cache.Key(cache.Inputs{Parent: parent, Step: bd.stepKey(id)})
}
