//go:build !linux

package layer

// readXattrs reads no extended attributes outside Linux.
func readXattrs(path string) (map[string]string, error) { return nil, nil }
