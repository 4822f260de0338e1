// Package refgrammar checks the parts of an image reference against the
// grammar of github.com/distribution/reference, written out as code:
//
//	reference   := name [ ":" tag ] [ "@" digest ]
//	name        := [domain "/"] path-component ["/" path-component]*
//	domain      := host [":" port]
//	host        := domain-component ["." domain-component]* | "[" ipv6 "]"
//	path-comp   := alnum [separator alnum]*     (lowercase only)
//	separator   := "." | "_" | "__" | "-"+
//	tag         := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//
// The image store (which names a reference's domain by Docker's rules) and
// the build checks (which ask only whether the grammar has a parse) share
// it.
package refgrammar

import "strings"

// ValidDomain: host[:port], the host dot-separated alphanumeric labels
// (inner hyphens allowed, upper case too) or a bracketed IPv6 address.
func ValidDomain(d string) bool {
	host, port, hasPort := strings.Cut(d, ":")
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		host, port = d[:end+1], ""
		rest := d[end+1:]
		hasPort = rest != ""
		if hasPort {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return false
			}
			port = p
		}
		inner := host[1 : len(host)-1]
		if inner == "" || strings.Trim(inner, "0123456789abcdefABCDEF:") != "" {
			return false
		}
	} else {
		for _, c := range strings.Split(host, ".") {
			if !validDomainComponent(c) {
				return false
			}
		}
	}
	if hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return false
	}
	return true
}

func validDomainComponent(c string) bool {
	if c == "" || c[0] == '-' || c[len(c)-1] == '-' {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isAlnum(c[i]) && !isUpper(c[i]) && c[i] != '-' {
			return false
		}
	}
	return true
}

// ValidPathComponent: lower-case alphanumeric runs joined by ".", "_",
// "__" or runs of "-".
func ValidPathComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if isAlnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isAlnum(c[j]) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__":
		case strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// ValidTag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
func ValidTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isAlnum(c) && !isUpper(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
