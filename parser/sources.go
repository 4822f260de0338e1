package parser

import (
	"net/url"
	"strings"
)

// IsURL reports a remote source of ADD (http, https or git).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git://")
}

// IsGitURL tells git sources of ADD (which BuildKit clones) from plain URLs.
func IsGitURL(src string) bool {
	if strings.HasPrefix(src, "git@") || strings.HasPrefix(src, "git://") {
		return true
	}
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		return false
	}
	u, err := url.Parse(src)
	return err == nil && strings.HasSuffix(u.Path, ".git")
}
