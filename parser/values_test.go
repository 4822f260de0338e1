package parser

import (
	"reflect"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"80", []string{"80/tcp"}, false},
		{"53/udp", []string{"53/udp"}, false},
		{"8000-8002", []string{"8000/tcp", "8001/tcp", "8002/tcp"}, false},
		{"9000/SCTP", []string{"9000/sctp"}, false},
		{"127.0.0.1:80:80/tcp", []string{"80/tcp"}, false},
		{"http", nil, true},
		{"80/icmp", nil, true},
		{"90-80", nil, true},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCheckSignal(t *testing.T) {
	for _, ok := range []string{"SIGTERM", "TERM", "sigkill", "9", "SIGRTMIN+3", "SIGPWR"} {
		if err := CheckSignal(ok); err != nil {
			t.Errorf("CheckSignal(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"SIGFOO", "0", "99", ""} {
		if err := CheckSignal(bad); err == nil {
			t.Errorf("CheckSignal(%q) accepted", bad)
		}
	}
}
