package httpapi

import (
	"net/netip"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// parseIPBothWays is parseIP as first written: a bare address, else one
// with a port.
func parseIPBothWays(s string) (netip.Addr, bool) {
	addr, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = ap.Addr()
	}
	return addr.Unmap().WithZone(""), true
}

// TestParseIPByShape: parseIP, which picks one parse by the text's shape,
// reads every text as trying both parses does: addresses bare and with
// ports, bracketed or not, with zones, IPv4-mapped, and near-misses.
func TestParseIPByShape(t *testing.T) {
	for _, s := range []string{"127.0.0.1:54321", "127.0.0.1", "[::1]:80", "::1", "[::1]", "::1:80", "[fe80::1%eth0]:443",
		"fe80::1%eth0", "::ffff:10.0.0.1", "[::ffff:10.0.0.1]:9", "1:2", "", ":", "[", "[]:1", "1.2.3.4:", "1.2.3.4:99999", "a:b:c"} {
		gotAddr, gotOK := parseIP(s)
		wantAddr, wantOK := parseIPBothWays(s)
		if gotAddr != wantAddr || gotOK != wantOK {
			t.Errorf("parseIP(%q) = %v, %v; both parses read %v, %v", s, gotAddr, gotOK, wantAddr, wantOK)
		}
	}
	piece := rapid.SampledFrom([]string{"1", "10", "255", "256", ".", ":", "::", "[", "]", "%", "eth0", "ffff", "fe80", "a", "0", "8080", " "})
	rapid.Check(t, func(t *rapid.T) {
		s := strings.Join(rapid.SliceOfN(piece, 0, 12).Draw(t, "pieces"), "")
		if rapid.Bool().Draw(t, "real") {
			var b [16]byte
			for i := range b {
				b[i] = rapid.Byte().Draw(t, "b")
			}
			addr := netip.AddrFrom16(b)
			if rapid.Bool().Draw(t, "v4") {
				addr = netip.AddrFrom4([4]byte(b[:4]))
			}
			s = addr.String()
			if rapid.Bool().Draw(t, "port") {
				s = netip.AddrPortFrom(addr, rapid.Uint16().Draw(t, "p")).String()
			}
		}
		gotAddr, gotOK := parseIP(s)
		wantAddr, wantOK := parseIPBothWays(s)
		if gotAddr != wantAddr || gotOK != wantOK {
			t.Fatalf("parseIP(%q) = %v, %v; both parses read %v, %v", s, gotAddr, gotOK, wantAddr, wantOK)
		}
	})
}

// BenchmarkParseIP parses a request's RemoteAddr, as every request does
// (the parse by shape, and both parses as first written):
//
//	go test ./httpapi -run '^$' -bench ParseIP -benchmem
func BenchmarkParseIP(b *testing.B) {
	for _, parse := range []struct {
		name string
		fn   func(string) (netip.Addr, bool)
	}{{"by shape", parseIP}, {"both ways", parseIPBothWays}} {
		b.Run(parse.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := parse.fn("127.0.0.1:54321"); !ok {
					b.Fatal("not parsed")
				}
			}
		})
	}
}
