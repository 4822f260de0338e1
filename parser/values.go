package parser

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ParsePorts expands an EXPOSE word ("80", "80/udp", "8000-8002/tcp",
// "127.0.0.1:80:80/tcp") into "port/proto" keys, as Docker reads them.
func ParsePorts(spec string) ([]string, error) {
	// Strip an optional ip: and host-port: prefix ("127.0.0.1:80:80/tcp").
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		spec = spec[i+1:]
	}
	portPart, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto %q in port spec %q", proto, spec)
	}
	lo, hi, isRange := strings.Cut(portPart, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", spec)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid port range %q", spec)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

// signalNames are the Linux signal names STOPSIGNAL accepts (with or without SIG).
var signalNames = []string{"ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
	"KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
	"TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ"}

// CheckSignal accepts a STOPSIGNAL value: "SIGTERM", "TERM", "15" or
// "SIGRTMIN+3".
func CheckSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return fmt.Errorf("invalid signal: %s", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if slices.Contains(signalNames, name) {
		return nil
	}
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return fmt.Errorf("invalid signal: %s", s)
}
