package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/botfleet/botfleet/internal/netguard/netguardtest"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		name  string
		addr  string
		allow []string
		want  string // substring of the error; "" means allowed
	}{
		{name: "public IPv4", addr: "93.184.215.14"},
		{name: "public IPv6", addr: "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		{name: "loopback", addr: "127.0.0.1", want: "127.0.0.1 is loopback"},
		{name: "loopback range", addr: "127.9.9.9", want: "loopback"},
		{name: "IPv6 loopback", addr: "::1", want: "::1 is loopback"},
		{name: "RFC 1918 10/8", addr: "10.0.0.1", want: "private (RFC 1918)"},
		{name: "RFC 1918 172.16/12", addr: "172.31.255.255", want: "private"},
		{name: "RFC 1918 192.168/16", addr: "192.168.1.1", want: "private"},
		{name: "just outside 172.16/12", addr: "172.32.0.1"},
		{name: "cloud metadata", addr: "169.254.169.254", want: "link-local (cloud metadata)"},
		{name: "CGNAT", addr: "100.64.0.1", want: "CGNAT"},
		{name: "Alibaba metadata in CGNAT", addr: "100.100.100.200", want: "CGNAT"},
		{name: "multicast", addr: "224.0.0.1", want: "multicast"},
		{name: "broadcast", addr: "255.255.255.255", want: "broadcast"},
		{name: "unspecified", addr: "0.0.0.0", want: "unspecified"},
		{name: "IPv6 unspecified", addr: "::", want: "unspecified"},
		{name: "unique local", addr: "fd12:3456::1", want: "unique local"},
		{name: "IPv6 link-local", addr: "fe80::1", want: "link-local"},
		{name: "IPv6 link-local with zone", addr: "fe80::1%eth0", want: "link-local"},
		{name: "IPv6 multicast", addr: "ff02::1", want: "multicast"},
		{name: "mapped loopback", addr: "::ffff:127.0.0.1", want: "127.0.0.1 is loopback"},
		{name: "mapped metadata", addr: "::ffff:169.254.169.254", want: "link-local"},
		{name: "mapped private", addr: "::ffff:10.0.0.1", want: "private"},
		{name: "mapped public", addr: "::ffff:93.184.215.14"},
		{name: "IPv4-compatible loopback", addr: "::127.0.0.1", want: "IPv4-compatible"},
		{name: "NAT64 of metadata", addr: "64:ff9b::a9fe:a9fe", want: "NAT64 of link-local"},
		{name: "NAT64 of public", addr: "64:ff9b::5db8:d70e"},
		{name: "6to4 of private", addr: "2002:0a00:0001::1", want: "6to4 of private"},
		{name: "Teredo", addr: "2001::1", want: "Teredo"},
		{name: "loopback allowed by prefix", addr: "127.0.0.1", allow: []string{"127.0.0.0/8"}},
		{name: "mapped loopback allowed by prefix", addr: "::ffff:127.0.0.1", allow: []string{"127.0.0.0/8"}},
		{name: "loopback allowed by address", addr: "127.0.0.1", allow: []string{"127.0.0.1"}},
		{name: "other loopback not allowed", addr: "127.0.0.2", allow: []string{"127.0.0.1"}, want: "loopback"},
		{name: "private allowed", addr: "10.1.2.3", allow: []string{"10.1.0.0/16"}},
		{name: "private outside the allowed prefix", addr: "10.2.0.1", allow: []string{"10.1.0.0/16"}, want: "private"},
		{name: "IPv6 allowed", addr: "fd00::5", allow: []string{"fd00::/8"}},
		{name: "host name entry opens no address", addr: "127.0.0.1", allow: []string{"localhost"}, want: "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			err = g.CheckAddr(netip.MustParseAddr(tt.addr))
			checkErr(t, err, tt.want)
		})
	}
}

func TestZeroGuard(t *testing.T) {
	var g Guard
	if err := g.CheckAddr(netip.MustParseAddr("10.0.0.1")); !errors.Is(err, ErrRefused) {
		t.Errorf("zero Guard: CheckAddr(10.0.0.1) = %v, want ErrRefused", err)
	}
	if err := g.CheckName("metadata.google.internal"); !errors.Is(err, ErrRefused) {
		t.Errorf("zero Guard: CheckName(metadata.google.internal) = %v, want ErrRefused", err)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name  string
		allow []string
		want  string // substring of the error; "" means accepted
	}{
		{name: "none"},
		{name: "every kind", allow: []string{"files.internal", "*.svc.cluster.local", "10.0.0.0/8", "fd00::/8", "192.168.1.5", "::1", "[::1]", " Spaced.Example.COM. "}},
		{name: "empty entry", allow: []string{""}, want: `entry "": empty`},
		{name: "prefix too long", allow: []string{"10.0.0.0/33"}, want: `entry "10.0.0.0/33": not a CIDR prefix`},
		{name: "host bits set", allow: []string{"10.0.0.1/8"}, want: "did you mean 10.0.0.0/8?"},
		{name: "mapped prefix", allow: []string{"::ffff:10.0.0.0/104"}, want: "IPv4-mapped"},
		{name: "port", allow: []string{"example.com:8080"}, want: "ports cannot be chosen"},
		{name: "scheme", allow: []string{"http://example.com"}, want: "not a CIDR prefix"},
		{name: "space inside", allow: []string{"a b"}, want: "not a host name"},
		{name: "numeric name", allow: []string{"*.1"}, want: "not a host name"},
		{name: "bare star", allow: []string{"*"}, want: "not a host name"},
		{name: "zone", allow: []string{"fe80::1%eth0"}, want: "zone"},
		{name: "says what is allowed", allow: []string{"x y"}, want: "want a host name (example.com, *.example.com), an IP address (10.1.2.3) or a CIDR prefix (10.0.0.0/8, fd00::/8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.allow)
			if tt.want == "" {
				if err != nil {
					t.Errorf("New(%q) = %v, want no error", tt.allow, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q) = %v, want an error containing %q", tt.allow, err, tt.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name  string
		host  string
		allow []string
		want  string
	}{
		{name: "ordinary", host: "example.com"},
		{name: "GCP metadata", host: "metadata.google.internal", want: "cloud metadata"},
		{name: "upper case, trailing dot", host: "Metadata.Google.Internal.", want: "cloud metadata"},
		{name: "AWS", host: "instance-data", want: "cloud metadata"},
		{name: "allowed", host: "metadata.google.internal", allow: []string{"metadata.google.internal"}},
		{name: "allowed by wildcard", host: "metadata.google.internal", allow: []string{"*.google.internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, g.CheckName(tt.host), tt.want)
		})
	}
}

// TestDialContext dials for real, but only loopback: the test's dialer
// stops any connection to another address the guard lets through (failing
// the test), and its resolver answers from /etc/hosts or not at all, so no
// packet leaves the machine whatever the guard does.
func TestDialContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	tests := []struct {
		name  string
		host  string
		allow []string
		want  string
	}{
		{name: "loopback refused", host: "127.0.0.1", want: "127.0.0.1 is loopback"},
		{name: "name resolving to loopback refused", host: "localhost", want: "is loopback"},
		{name: "loopback allowed by prefix", host: "127.0.0.1", allow: []string{"127.0.0.0/8"}},
		{name: "name resolving to an allowed prefix", host: "localhost", allow: []string{"127.0.0.1/32"}},
		{name: "allowed name", host: "localhost", allow: []string{"localhost"}},
		{name: "allowed name does not open its address", host: "127.0.0.1", allow: []string{"localhost"}, want: "loopback"},
		{name: "metadata name refused before resolving", host: "metadata.google.internal", want: "cloud metadata"},
		{name: "metadata address", host: "169.254.169.254", want: "link-local"},
		{name: "private address", host: "10.0.0.1", want: "private"},
		{name: "mapped private address", host: "::ffff:10.0.0.1", want: "private"},
		{name: "IPv6 unique local", host: "fd00::1", want: "unique local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.allow)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := g.DialContext(netguardtest.LoopbackOnly(t))(context.Background(), "tcp", net.JoinHostPort(tt.host, port))
			if err == nil {
				conn.Close()
			}
			checkErr(t, err, tt.want)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("err = %v, want none", err)
		}
		return
	}
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want ErrRefused saying %q", err, want)
	}
}
