package main

import "strings"

// parseBuildContexts reads --build-context NAME=VALUE flags (the engine
// checks the values).
func parseBuildContexts(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(flags))
	for _, f := range flags {
		name, v, ok := strings.Cut(f, "=")
		if !ok || name == "" || v == "" {
			return nil, usagef("--build-context %q: want NAME=VALUE", f)
		}
		if _, dup := out[name]; dup {
			return nil, usagef("--build-context %q: %s is named twice", f, name)
		}
		out[name] = v
	}
	return out, nil
}
