//go:build linux

package e2e

import (
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// Image config conformance with BuildKit (v0.32, moby/buildkit
// frontend/dockerfile/dockerfile2llb and exporter/containerimage).
// The expected JSON below is written from reading BuildKit's source, not
// recorded from a live BuildKit:
//   - a FROM scratch stage starts from emptyImage (dockerfile2llb/image.go):
//     os/architecture/variant of the platform, rootfs type "layers",
//     WorkingDir "/", Env [PATH=<DefaultPathEnvUnix>], no history;
//   - the exporter (writer.go, patchImageConfig) re-marshals the config's
//     top-level keys as a map, so they come sorted, and always writes
//     "rootfs" and "history": null when there are no layers / no entries;
//   - a COPY's history entry ends in " # buildkit" (commitToHistory).
// Deliberate difference: our history comment is "builder.dockerfile.v0"
// where BuildKit writes "buildkit.dockerfile.v0".

// rawConfig returns the config blob of ref exactly as stored, with the
// times and digests (which differ between runs and builders) replaced.
func rawConfig(t *testing.T, e *env, ref string) string {
	t.Helper()
	_, id, _ := e.inspectImage(ref)
	data, err := os.ReadFile(e.blobPath(id))
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`"created":"[^"]*"`).ReplaceAllString(string(data), `"created":"T"`)
	s = regexp.MustCompile(`sha256:[0-9a-f]{64}`).ReplaceAllString(s, "sha256:D")
	return s
}

const conformancePath = `"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]`

func TestConformanceScratchConfig(t *testing.T) {
	e := newEnv(t)
	arch := runtime.GOARCH
	copyCfg := `{"architecture":"` + arch + `","config":{` + conformancePath + `,"WorkingDir":"/"},"created":"T",` +
		`"history":[{"created":"T","created_by":"COPY f /f # buildkit","comment":"builder.dockerfile.v0"}],` +
		`"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:D"]}}`
	cases := []struct{ name, dockerfile, want string }{
		{"scratch-copy", "FROM scratch\nCOPY f /f\n", copyCfg},
		// A stage that sets nothing, on a scratch stage: the same config.
		{"stage-sets-nothing", "FROM scratch AS base\nCOPY f /f\nFROM base\n", copyCfg},
		{"scratch-only", "FROM scratch\n",
			`{"architecture":"` + arch + `","config":{` + conformancePath + `,"WorkingDir":"/"},"created":"T",` +
				`"history":null,"os":"linux","rootfs":{"type":"layers","diff_ids":null}}`},
		{"scratch-label", "FROM scratch\nLABEL a=b\n",
			`{"architecture":"` + arch + `","config":{` + conformancePath + `,"WorkingDir":"/","Labels":{"a":"b"}},"created":"T",` +
				`"history":[{"created":"T","created_by":"LABEL a=b","comment":"builder.dockerfile.v0","empty_layer":true}],` +
				`"os":"linux","rootfs":{"type":"layers","diff_ids":null}}`},
		// ENV without PATH keeps the default PATH first, WORKDIR relative to "/".
		{"scratch-env-workdir-rel", "FROM scratch\nENV A=1\nWORKDIR w\n",
			`{"architecture":"` + arch + `","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=1"],"WorkingDir":"/w"},"created":"T",` +
				`"history":[{"created":"T","created_by":"ENV A=1","comment":"builder.dockerfile.v0","empty_layer":true},` +
				`{"created":"T","created_by":"WORKDIR /w","comment":"builder.dockerfile.v0"}],` +
				`"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:D"]}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := writeContext(t, map[string]string{"Dockerfile": c.dockerfile, "f": "hi\n"})
			e.mustRun("build", ctx, "-t", "conf-"+c.name)
			if got := rawConfig(t, e, "conf-"+c.name); got != c.want {
				t.Errorf("config:\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

// BuildKit's dispatchCmd sets ArgsEscaped on every CMD, shell or exec form;
// dispatchEntrypoint and dispatchRun never touch it, and it is inherited
// from the base image or stage like any config field.
func TestConformanceArgsEscaped(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, dockerfile string
		want             bool
	}{
		{"cmd-shell", "FROM busybox\nCMD echo hi\n", true},
		{"cmd-exec", "FROM busybox\nCMD [\"echo\", \"hi\"]\n", true},
		{"cmd-shell-then-exec", "FROM busybox\nCMD echo hi\nCMD [\"echo\"]\n", true},
		{"entrypoint-shell", "FROM busybox\nENTRYPOINT echo hi\n", false},
		{"entrypoint-exec", "FROM busybox\nENTRYPOINT [\"echo\"]\n", false},
		{"run", "FROM busybox\nRUN true\n", false},
		{"none", "FROM busybox\nENV A=1\n", false},
		{"inherited", "FROM busybox AS base\nCMD echo hi\nFROM base\nENTRYPOINT [\"x\"]\nRUN true\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := writeContext(t, map[string]string{"Dockerfile": c.dockerfile})
			e.mustRun("build", ctx, "-t", "esc-"+c.name)
			_, _, cfg := e.inspectImage("esc-" + c.name)
			got, _ := cfg["config"].(map[string]any)["ArgsEscaped"].(bool)
			if got != c.want {
				t.Errorf("ArgsEscaped = %v, want %v", got, c.want)
			}
			raw := rawConfig(t, e, "esc-"+c.name)
			if has := strings.Contains(raw, `"ArgsEscaped"`); has != c.want {
				t.Errorf("ArgsEscaped present = %v, want %v (omitted when false): %s", has, c.want, raw)
			}
		})
	}
}

// BuildKit's dispatchWorkdir: WORKDIR / only changes the config (an
// empty_layer entry); any other path is a mkdir -p file op, which the
// exporter always turns into a layer, an empty tar when the dir existed.
func TestConformanceWorkdirLayers(t *testing.T) {
	e := newEnv(t)
	const emptyTar = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" // 1024 zero bytes
	_, _, base := e.inspectImage("busybox")
	nBase := len(base["rootfs"].(map[string]any)["diff_ids"].([]any))
	nHist := len(base["history"].([]any))
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nWORKDIR /tmp\nWORKDIR /\nWORKDIR /new/dir\nWORKDIR /new\n"})
	e.mustRun("build", ctx, "-t", "wd")
	_, _, cfg := e.inspectImage("wd")
	ids := cfg["rootfs"].(map[string]any)["diff_ids"].([]any)[nBase:]
	hist := cfg["history"].([]any)[nHist:]
	type h struct {
		by    string
		empty bool
	}
	want := []h{{"WORKDIR /tmp", false}, {"WORKDIR /", true}, {"WORKDIR /new/dir", false}, {"WORKDIR /new", false}}
	if len(hist) != len(want) {
		t.Fatalf("history %v, want %v", hist, want)
	}
	for i, w := range want {
		m := hist[i].(map[string]any)
		empty, _ := m["empty_layer"].(bool)
		if m["created_by"] != w.by || empty != w.empty {
			t.Errorf("history[%d] = %v, want %+v", i, m, w)
		}
	}
	if len(ids) != 3 {
		t.Fatalf("%d new layers, want 3: %v", len(ids), ids)
	}
	if ids[0] != emptyTar || ids[2] != emptyTar {
		t.Errorf("WORKDIR of an existing dir: diff_ids %v and %v, want the empty tar %s", ids[0], ids[2], emptyTar)
	}
	if ids[1] == emptyTar {
		t.Errorf("WORKDIR /new/dir made an empty layer")
	}
	if wd := cfg["config"].(map[string]any)["WorkingDir"]; wd != "/new" {
		t.Errorf("WorkingDir = %v, want /new", wd)
	}
}
