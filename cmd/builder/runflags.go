package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/client"
)

// parseEnv reads --env-file files, then -e values, as docker run: KEY=VALUE
// as given, a bare KEY takes builder's own value (and is left out when
// builder has none); in files, blank lines and lines starting with # are
// skipped.
func parseEnv(files, flags []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	add := func(kv, where string) error {
		k, _, hasValue := strings.Cut(kv, "=")
		switch {
		case k == "":
			return fmt.Errorf("%s: invalid environment variable %q", where, kv)
		case strings.ContainsAny(k, " \t"):
			return fmt.Errorf("%s: variable %q contains whitespace", where, k)
		case hasValue:
			out = append(out, kv)
		default:
			if v, ok := lookup(k); ok {
				out = append(out, k+"="+v)
			}
		}
		return nil
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimLeft(sc.Text(), " \t")
			if line == "" || line[0] == '#' {
				continue
			}
			if err := add(line, fmt.Sprintf("%s:%d", f, n)); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", f, err)
		}
	}
	for _, e := range flags {
		if err := add(e, "-e"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseMounts reads -v, --tmpfs and --mount values as docker run does.
func parseMounts(volumes, tmpfs, mounts []string) ([]client.RunMount, error) {
	var out []client.RunMount
	for _, v := range volumes {
		m, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("-v %s: %w", v, err)
		}
		out = append(out, m)
	}
	for _, t := range tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		m := client.RunMount{Type: "tmpfs", Target: target}
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				m.ReadOnly = true
			case "rw":
				m.ReadOnly = false
			default:
				m.Options = append(m.Options, o)
			}
		}
		out = append(out, m)
	}
	for _, s := range mounts {
		m, err := parseMount(s)
		if err != nil {
			return nil, fmt.Errorf("--mount %s: %w", s, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseVolume reads -v [SOURCE:]TARGET[:MODE]: a SOURCE that is a path
// (starting with / or .) is a bind mount, else a volume name; no SOURCE is
// an anonymous volume.
func parseVolume(v string) (client.RunMount, error) {
	parts := strings.Split(v, ":")
	var m client.RunMount
	switch len(parts) {
	case 1:
		return client.RunMount{Type: "volume", Target: parts[0]}, nil
	case 2, 3:
		m = client.RunMount{Type: "volume", Source: parts[0], Target: parts[1]}
	default:
		return m, fmt.Errorf("invalid volume spec: want [SOURCE:]TARGET[:ro]")
	}
	if m.Source == "" {
		return m, fmt.Errorf("invalid volume spec: empty source")
	}
	if strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, ".") {
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return m, err
		}
		m.Type, m.Source = "bind", abs
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				m.ReadOnly = true
			case "rw", "z", "Z", "nocopy":
			default:
				return m, fmt.Errorf("invalid mode %q: want ro or rw", o)
			}
		}
	}
	return m, nil
}

// parseMount reads a --mount value: comma-separated KEY=VALUE fields.
func parseMount(s string) (client.RunMount, error) {
	m := client.RunMount{Type: "volume"} // docker's default type
	for _, field := range strings.Split(s, ",") {
		k, v, hasValue := strings.Cut(field, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = v
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			if !hasValue {
				m.ReadOnly = true
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return m, fmt.Errorf("invalid value for %s: %q", k, v)
			}
			m.ReadOnly = b
		case "volume-nocopy", "consistency":
		case "bind-propagation":
			if v != "rprivate" && v != "private" {
				return m, fmt.Errorf("bind-propagation=%s is not supported (mounts are private)", v)
			}
		case "tmpfs-size":
			if _, err := parseTmpfsSize(v); err != nil {
				return m, err
			}
			m.Options = append(m.Options, "size="+v)
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(v, 8, 32)
			if err != nil {
				return m, fmt.Errorf("invalid tmpfs-mode %q: want an octal mode", v)
			}
			m.Options = append(m.Options, fmt.Sprintf("mode=%o", mode))
		default:
			return m, fmt.Errorf("unexpected key %q", k)
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("target is required")
	}
	if m.Type == "bind" && m.Source != "" {
		abs, err := filepath.Abs(m.Source)
		if err != nil {
			return m, err
		}
		m.Source = abs
	}
	if m.Type == "bind" && m.Source == "" {
		return m, fmt.Errorf("a bind mount needs a source")
	}
	return m, nil
}

// parseTmpfsSize checks a tmpfs size: bytes, or a number with k, m or g.
func parseTmpfsSize(v string) (int64, error) {
	n := strings.TrimRight(strings.ToLower(v), "kmg")
	i, err := strconv.ParseInt(n, 10, 64)
	if err != nil || i < 0 || len(v)-len(n) > 1 {
		return 0, fmt.Errorf("invalid tmpfs-size %q", v)
	}
	return i, nil
}
