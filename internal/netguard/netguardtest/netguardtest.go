// Package netguardtest holds a dialer for tests of code that dials through
// a netguard.Guard, so that such tests never reach beyond the machine.
package netguardtest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// LoopbackOnly returns a dialer that never sends a packet off the machine,
// to hand to netguard.Guard.DialContext in tests: its Control, which runs
// after the guard's, fails the test and stops the dial for any address but
// loopback (so a guard that wrongly lets one through is caught before
// connect), and its resolver answers from /etc/hosts only.
func LoopbackOnly(t *testing.T) *net.Dialer {
	t.Helper()
	return &net.Dialer{
		Control: func(network, address string, _ syscall.RawConn) error {
			if ap, err := netip.ParseAddrPort(address); err != nil || !ap.Addr().Unmap().IsLoopback() {
				t.Errorf("dial %s %s: reached connect; the guard should have refused it", network, address)
				return errors.New("netguardtest: only loopback may be dialled")
			}
			return nil
		},
		Resolver: &net.Resolver{
			PreferGo: true,
			Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("netguardtest: no DNS")
			},
		},
	}
}
