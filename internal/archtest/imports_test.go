// Package archtest checks that the import graph of the module is exactly
// the one ../shared/ARCHITECTURE.md draws: no edge it does not name, and
// no named edge that the code no longer has (the drawing would be stale).
package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/builderdev/builder/"

// graph lists, per package, the project packages it imports directly.
var graph = map[string][]string{
	// Leaves: never import each other.
	"parser":   nil,
	"fileset":  nil,
	"cache":    nil,
	"layer":    nil,
	"snapshot": nil,
	"oci":      nil,
	// Lends SSH agents to RUN --mount=type=ssh; the engine sees it only
	// through executor.SSHAgents.
	"sshforward": nil,
	// SLSA provenance statements (pure data; client stores them).
	"provenance": nil,
	// A source of trees: git sources fetched with the git binary, kept
	// by commit (a leaf like fileset, which then reads the trees).
	"source/git": nil,

	"snapshot/sandbox": {"snapshot"}, // for the Mount type
	"oci/registry":     {"oci"},
	"imagediff":        {"layer"}, // decompression
	// Imports verify a layer's diffID as it downloads (layer: decompression).
	"cache/remote": {"cache", "layer", "oci", "oci/registry"},
	"executor":     {"parser", "fileset", "cache", "layer", "snapshot", "snapshot/sandbox", "oci", "oci/registry", "source/git"},
	// The stores it opens, the engine, imagediff; and two edges the text
	// does not spell out: oci/registry (pull, push, login as verbs) and
	// layer (a type=local output applies the layers; compression names).
	// builder run: sandbox (the same child as RUN, with the image's
	// config) and fileset (the image's user, as RUN resolves it), and
	// which platforms this host can run RUN steps for (the Platforms
	// verb); source/git: the store of git trees it opens.
	"client":      {"executor", "imagediff", "cache/remote", "oci", "oci/registry", "snapshot", "cache", "layer", "snapshot/sandbox", "fileset", "sshforward", "provenance", "source/git"},
	"cmd/builder": {"client", "snapshot/sandbox"}, // sandbox: the re-exec entry in main
}

// helpers are internal packages any package may import (small shared code
// with no policy); internal/testutil is for tests only.
var helpers = []string{"internal/atomicfile", "internal/ctxio", "internal/dirsize", "internal/fsmode", "internal/refgrammar"}

func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		if strings.HasPrefix(pkg, "internal/") || pkg == "e2e" || strings.HasPrefix(pkg, "e2e/") || pkg == "bench" {
			continue
		}
		want, known := graph[pkg]
		if !known {
			t.Errorf("package %s is not in the graph: add it here and to ARCHITECTURE.md", pkg)
			continue
		}
		seen[pkg] = true
		var got []string
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/google/go-containerregistry") && pkg != "oci/registry" {
				t.Errorf("%s imports %s: only oci/registry may use go-containerregistry", pkg, imp)
			}
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if dep == "internal/testutil" {
				t.Errorf("%s imports internal/testutil outside its tests", pkg)
				continue
			}
			if slices.Contains(helpers, dep) {
				continue
			}
			got = append(got, dep)
			if !slices.Contains(want, dep) {
				t.Errorf("forbidden import: %s -> %s", pkg, dep)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("the graph says %s -> %s, but %s no longer imports it: update the graph and ARCHITECTURE.md", pkg, w, pkg)
			}
		}
	}
	for pkg := range graph {
		if !seen[pkg] {
			t.Errorf("package %s of the graph does not exist", pkg)
		}
	}
}
