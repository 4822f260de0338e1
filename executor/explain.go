package executor

import (
	"context"
	"path/filepath"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/oci/registry"
)

// historyID names the history of this build's Dockerfile and target (and
// platform, when one build makes several).
func historyID(opts Options, multi bool) string {
	abs, _ := filepath.Abs(opts.ContextDir)
	if opts.ContextSource != "" {
		abs = opts.ContextSource
	}
	plat := ""
	if multi {
		plat = registry.FormatPlatform(opts.Platform)
	}
	return cache.Key(cache.Inputs{Version: "builder.history.v1", Step: struct {
		Context, Dockerfile, Target string
		Platform                    string `json:",omitempty"`
	}{abs, opts.DockerfileName, opts.Target, plat}}).String()
}

// keyWords say the fields of stepKey (keys.go) in the words of the
// Dockerfile, for cache.Explain.
var keyWords = cache.Words{
	Maps:  []cache.Word{{Field: "step.buildArgs", Text: "build arg"}, {Field: "step.git", Text: "git source"}},
	Env:   []cache.Word{{Field: "step.env", Text: "ENV"}},
	Files: "step.sources",
	Fields: []cache.Word{
		{Field: "step.args", Text: "the command changed"}, {Field: "step.script", Text: "the heredoc script changed"},
		{Field: "step.user", Text: "USER"}, {Field: "step.workdir", Text: "WORKDIR"}, {Field: "step.shell", Text: "SHELL"},
		{Field: "step.network", Text: "--network"}, {Field: "step.mounts", Text: "a --mount changed"},
		{Field: "step.insecure", Text: "--security"}, {Field: "step.platform", Text: "the platform"},
		{Field: "step.items", Text: "a heredoc, URL or archive source changed"},
		{Field: "step.from", Text: "the --from stage or image changed"},
		{Field: "step.srcs", Text: "the sources changed"}, {Field: "step.excludes", Text: "--exclude"},
		{Field: "step.chown", Text: "--chown"}, {Field: "step.chmod", Text: "--chmod"},
		{Field: "step.dest", Text: "the destination"}, {Field: "step.destIsDir", Text: "the destination"},
		{Field: "step.parents", Text: "--parents"}, {Field: "step.path", Text: "the path"},
		{Field: "layer.compression", Text: "--compression"}, {Field: "layer.epoch", Text: "SOURCE_DATE_EPOCH"},
	},
}

// explain notes the step in the history and, on a miss, says why.
func (bd *build) explain(ctx context.Context, sr stepRun, st *imageState, cur *cache.StepRecord, fs fsStep, hit bool) []string {
	if !hit && fs.sources != nil {
		cur.Files = fs.sources.Sums()
	}
	bd.hist.Record(sr.pos, cur, hit)
	if hit {
		return nil
	}
	parent := cache.ParentMissed
	switch {
	case sr.first:
		parent = cache.FirstOfStage
	case st.lastHit:
		parent = cache.ParentHit
	}
	return bd.hist.Explain(bd.hist.Previous(sr.pos), cur, parent, keyWords)
}
