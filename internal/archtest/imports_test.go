// Package archtest checks the import rules of ARCHITECTURE.md.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/builderdev/builder/"

// allowed lists, per package, the project packages it may import directly.
var allowed = map[string][]string{
	"parser":           nil,
	"cache":            nil,
	"layer":            nil,
	"snapshot":         nil,
	"oci":              nil,
	"snapshot/sandbox": {"snapshot"},
	"oci/registry":     {"oci"},
	"imagediff":        {"layer"},
	"executor":         {"parser", "cache", "layer", "snapshot", "snapshot/sandbox", "oci", "oci/registry", "imagediff"},
	"cmd/builder":      {"executor", "parser", "oci", "layer", "snapshot/sandbox", "imagediff"},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		if strings.HasPrefix(pkg, "internal/") || pkg == "e2e" || pkg == "bench" {
			continue
		}
		rules, known := allowed[pkg]
		if !known {
			t.Errorf("package %s has no import rule: add it to allowed (and to ARCHITECTURE.md)", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/google/go-containerregistry") && pkg != "oci/registry" {
				t.Errorf("%s imports %s: only oci/registry may use go-containerregistry", pkg, imp)
			}
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			dep := strings.TrimPrefix(imp, mod)
			if !contains(rules, dep) {
				t.Errorf("forbidden import: %s -> %s", pkg, dep)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
