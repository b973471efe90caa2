// Package netguard keeps connections made on a job submitter's behalf (the
// http.fetch job type) away from the networks a worker can reach but a
// submitter must not: loopback, private, link-local (cloud metadata at
// 169.254.169.254), shared (CGNAT), multicast and other special-purpose
// addresses, in their IPv4, IPv6 and IPv4-mapped IPv6 forms, and the
// well-known cloud metadata host names. An allowlist of host names and
// CIDR prefixes opens chosen destinations.
//
// The address checked is the one connected to, after DNS resolution: the
// dialer's Control hook runs for every address it tries, just before
// connect(2). A name that resolves to a public address when a URL is
// checked and to a private one when it is dialled (DNS rebinding) gains
// nothing, and every redirect's new connection is checked the same way.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by every refusal; the error's text says which
// address was refused and why.
var ErrRefused = errors.New("destination refused")

// Guard decides which destinations may be connected to. The zero Guard
// refuses every special-purpose address and allows the rest (the public
// internet). A Guard is not changed after New, so it is safe for
// concurrent use.
type Guard struct {
	names    map[string]bool // allowed host names, lower case, without a trailing dot
	suffixes []string        // ".example.com" for an allowed "*.example.com"
	prefixes []netip.Prefix  // allowed addresses
}

// New returns a Guard that also allows the destinations in allow, each a
// host name ("files.internal", or "*.internal" for any name under it), an
// IP address ("10.1.2.3", "fd00::1") or a CIDR prefix ("10.0.0.0/8").
//
// An allowed host name is trusted whatever it resolves to; an allowed
// address or prefix is allowed whichever name led to it. The error names
// the first bad entry and what an entry may be.
func New(allow []string) (*Guard, error) {
	g := &Guard{names: make(map[string]bool)}
	for _, entry := range allow {
		if err := g.add(entry); err != nil {
			return nil, fmt.Errorf("entry %q: %w; want a host name (example.com, *.example.com), an IP address (10.1.2.3) or a CIDR prefix (10.0.0.0/8, fd00::/8)", entry, err)
		}
	}
	return g, nil
}

func (g *Guard) add(entry string) error {
	e := strings.TrimSpace(entry)
	if e == "" {
		return errors.New("empty")
	}
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		switch {
		case err != nil:
			return errors.New("not a CIDR prefix")
		case p.Addr().Is4In6():
			return errors.New("an IPv4-mapped prefix; write the IPv4 prefix")
		case p != p.Masked():
			return fmt.Errorf("bits set after the prefix length; did you mean %s?", p.Masked())
		}
		g.prefixes = append(g.prefixes, p)
		return nil
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(e, "["), "]")); err == nil {
		if a.Zone() != "" {
			return errors.New("an address with a zone")
		}
		a = a.Unmap()
		g.prefixes = append(g.prefixes, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(e), ".")
	if strings.Contains(name, ":") {
		return errors.New("a port or a malformed address (ports cannot be chosen)")
	}
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		if !validName(rest) {
			return errors.New("not a host name")
		}
		g.suffixes = append(g.suffixes, "."+rest)
		return nil
	}
	if !validName(name) {
		return errors.New("not a host name")
	}
	g.names[name] = true
	return nil
}

// validName reports whether s is a DNS name of letters, digits, '-' and
// '_' in dot-separated labels of 1 to 63 bytes, the last not all digits
// (so that no name looks like part of an address).
func validName(s string) bool {
	if s == "" || len(s) > 253 || strings.Trim(s[strings.LastIndexByte(s, '.')+1:], "0123456789") == "" {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normalName is host as the allowlist stores names.
func normalName(host string) string {
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// allowsName reports whether host is an allowed host name. An address is
// not a name: "10.0.0.1" never matches "*.1".
func (g *Guard) allowsName(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	name := normalName(host)
	if g.names[name] {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// metadataNames are the cloud metadata services' names. They resolve to
// link-local addresses the address check refuses anyway; refusing the name
// too spares the DNS lookup and holds if a resolver maps them elsewhere.
var metadataNames = map[string]bool{
	"metadata":                   true,
	"metadata.google.internal":   true,
	"metadata.goog":              true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// CheckName refuses a host name, before it is resolved, if it is a cloud
// metadata service's name that the allowlist does not open. It does not
// resolve host: the addresses are checked when dialled (see Control).
func (g *Guard) CheckName(host string) error {
	if metadataNames[normalName(host)] && !g.allowsName(host) {
		return fmt.Errorf("%w: %s is a cloud metadata service", ErrRefused, host)
	}
	return nil
}

// CheckAddr refuses ip if it is a special-purpose address (loopback,
// private, link-local, shared, multicast, unspecified, reserved, or an IPv6
// form of one) that no allowed address or prefix covers.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() {
		return fmt.Errorf("%w: no address", ErrRefused)
	}
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return nil
		}
	}
	if why := special(ip); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrRefused, ip, why)
	}
	return nil
}

// Control is a net.Dialer Control hook: it refuses to connect to an
// address CheckAddr refuses. The dialer calls it for each resolved address
// before connecting, so a refused address is never sent a packet.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s (%s) is not an IP address and port", ErrRefused, address, network)
	}
	return g.CheckAddr(ap.Addr())
}

// DialContext returns a dial function for an http.Transport that connects
// as d does (nil means a zero net.Dialer) but only where g allows: a host
// name the allowlist opens is dialled as is; any other host is refused if
// CheckName refuses it, and otherwise dialled with Control checking every
// address it resolves to. d's own Control or ControlContext, if any, runs
// after the guard's.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	trusted := *d
	guarded := *d
	guarded.Control = nil
	guarded.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := g.Control(network, address, c); err != nil {
			return err
		}
		switch {
		case d.ControlContext != nil:
			return d.ControlContext(ctx, network, address, c)
		case d.Control != nil:
			return d.Control(network, address, c)
		}
		return nil
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRefused, address, err)
		}
		if g.allowsName(host) {
			return trusted.DialContext(ctx, network, address)
		}
		if err := g.CheckName(host); err != nil {
			return nil, err
		}
		return guarded.DialContext(ctx, network, address)
	}
}
