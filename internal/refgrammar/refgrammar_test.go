package refgrammar

import "testing"

func TestParts(t *testing.T) {
	tests := []struct {
		f    func(string) bool
		name string
		in   string
		want bool
	}{
		{ValidDomain, "domain", "localhost:5000", true},
		{ValidDomain, "domain", "Registry.Example.COM", true},
		{ValidDomain, "domain", "[::1]:5000", true},
		{ValidDomain, "domain", "[]:5000", false},
		{ValidDomain, "domain", "-a.b", false},
		{ValidDomain, "domain", "a..b", false},
		{ValidDomain, "domain", "host:", false},
		{ValidDomain, "domain", "host:50a", false},
		{ValidPathComponent, "path", "a__b-c.d---e", true},
		{ValidPathComponent, "path", "a___b", false},
		{ValidPathComponent, "path", "a._b", false},
		{ValidPathComponent, "path", "A", false},
		{ValidPathComponent, "path", "", false},
		{ValidTag, "tag", "v1.2_3-x", true},
		{ValidTag, "tag", ".v1", false},
		{ValidTag, "tag", string(make([]byte, 129)), false},
	}
	for _, tt := range tests {
		if got := tt.f(tt.in); got != tt.want {
			t.Errorf("%s %q = %v, want %v", tt.name, tt.in, got, tt.want)
		}
	}
}
