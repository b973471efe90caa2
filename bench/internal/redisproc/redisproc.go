// Package redisproc starts a redis-server of its own for the benchmark
// programs, on a free loopback port, with persistence off, and measures
// what it costs.
package redisproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
}

// Start runs redis-server (from PATH) on a free 127.0.0.1 port and waits
// until it answers PING.
func Start(ctx context.Context) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (apt-get install redis-server): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "redisproc")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--maxclients", "10000")
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if rdb.Ping(ctx).Err() == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Close()
			return nil, errors.New("redis-server did not answer within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AddrFlag defines -redis on fs, the address of a Redis to use instead of
// a redis-server of the program's own (see Use).
func AddrFlag(fs *flag.FlagSet, addr *string) {
	fs.StringVar(addr, "redis", "", "host:port of a Redis to use (its data is flushed); default: start redis-server")
}

// Use returns addr if it is set; else it starts a redis-server (Start) and
// returns its address. done stops what Use started, if anything.
func Use(ctx context.Context, addr string) (_ string, done func(), err error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	s, err := Start(ctx)
	if err != nil {
		return "", nil, err
	}
	return s.Addr, s.Close, nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}

// CPU returns the CPU time the server has used so far (INFO cpu, user and
// system, all its threads).
func CPU(ctx context.Context, rdb redis.Cmdable) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		for _, key := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, fmt.Errorf("INFO cpu: %q: %w", line, err)
				}
				total += f
			}
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

// Quantile returns the q-quantile (nearest rank) of ds, which it sorts.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds))*q+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// Ms formats d in milliseconds with two decimals.
func Ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
