package main

import (
	"testing"
)

// TestLazyFlags: a command line gets its command's deferred flags, the
// same as when every command's are defined; the root's own help defines
// none of them.
func TestLazyFlags(t *testing.T) {
	// usages defines the flags for args (or every flag, when all), then
	// lists each command's; Find merges the persistent flags as a run does.
	usages := func(args []string, all bool) map[string]string {
		g := &globalFlags{}
		root := newRootCmd(g)
		if all {
			g.defineFlags(root, []string{"help"})
		}
		g.defineFlags(root, args)
		_, _, _ = root.Find(args)
		out := map[string]string{}
		for _, c := range root.Commands() {
			out[c.Name()] = c.Flags().FlagUsages()
		}
		return out
	}
	for _, name := range []string{"build", "run"} {
		for _, args := range [][]string{{name}, {name, "--help"}, {"--root", "/x", name, "."}} {
			got, all := usages(args, false), usages(args, true)
			if all[name] == "" {
				t.Fatalf("%s has no flags with all defined", name)
			}
			if got[name] != all[name] {
				t.Errorf("%q: %s's flags differ from all defined:\n%s\nwant\n%s", args, name, got[name], all[name])
			}
		}
	}
	for name, u := range usages([]string{"--help"}, false) {
		if (name == "build" || name == "run") && u != "" {
			t.Errorf("builder --help defined %s's flags", name)
		}
	}
}
