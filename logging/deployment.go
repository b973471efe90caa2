package logging

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
)

// Deployment is where this process runs; its fields become the log context
// fields hostname, container_id, deployment_env and region. A Deployment is a
// plain value and safe for concurrent use.
type Deployment struct {
	Hostname    string // os.Hostname(); in Kubernetes the pod name
	ContainerID string // full 64-hex container id, "" outside a container
	Env         string // DEPLOYMENT_ENV, "local" when unset
	Region      string // FLY_REGION, AWS_REGION, GOOGLE_CLOUD_REGION or REGION
}

// regionVars are the environment variables naming the region, most specific
// platform first: a Fly machine may also carry a generic REGION.
var regionVars = []string{"FLY_REGION", "AWS_REGION", "GOOGLE_CLOUD_REGION", "REGION"}

// DetectDeployment reads the OS hostname, the container id from
// /proc/self/cgroup then /proc/self/mountinfo, DEPLOYMENT_ENV (default
// "local") and the region from FLY_REGION, then AWS_REGION,
// GOOGLE_CLOUD_REGION, REGION (empty when none is set). It never fails: what
// it cannot find stays empty.
func DetectDeployment() Deployment {
	return detectDeployment(os.Getenv, os.ReadFile, os.Hostname)
}

// DetectDeploymentEnv is DetectDeployment reading the environment
// variables (DEPLOYMENT_ENV and the region's) through getenv, os.Getenv
// when nil, for a program whose configuration comes from elsewhere.
func DetectDeploymentEnv(getenv func(string) string) Deployment {
	if getenv == nil {
		getenv = os.Getenv
	}
	return detectDeployment(getenv, os.ReadFile, os.Hostname)
}

// detectDeployment is DetectDeployment with its environment, file system and
// hostname injected, so tests can play any host.
func detectDeployment(getenv func(string) string, readFile func(string) ([]byte, error), hostname func() (string, error)) Deployment {
	var d Deployment
	if h, err := hostname(); err == nil {
		d.Hostname = strings.TrimSpace(h)
	}
	if data, err := readFile("/proc/self/cgroup"); err == nil {
		d.ContainerID = containerIDFromCgroup(data)
	}
	// With a private cgroup namespace (the default under cgroup v2) the
	// cgroup file reads "0::/", but Docker and Podman still bind-mount
	// /etc/hostname from a directory named after the container.
	if d.ContainerID == "" {
		if data, err := readFile("/proc/self/mountinfo"); err == nil {
			d.ContainerID = containerIDFromMountinfo(data)
		}
	}
	d.Env = strings.TrimSpace(getenv("DEPLOYMENT_ENV"))
	if d.Env == "" {
		d.Env = "local"
	}
	for _, name := range regionVars {
		if r := strings.TrimSpace(getenv(name)); r != "" {
			d.Region = r
			break
		}
	}
	return d
}

// Attrs returns the non-empty fields as slog attributes keyed hostname,
// container_id, deployment_env and region, in that order.
func (d Deployment) Attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 4)
	for _, f := range [...]struct{ key, value string }{
		{"hostname", d.Hostname},
		{"container_id", d.ContainerID},
		{"deployment_env", d.Env},
		{"region", d.Region},
	} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
	}
	return attrs
}

// containerIDLen is the length of a Docker, containerd, CRI-O or Podman
// container id in hex.
const containerIDLen = 64

// containerIDFromCgroup returns the container id found in the contents of
// /proc/self/cgroup, or "" when there is none. Each line is
// "hierarchy:controllers:path"; the id is the first run of exactly 64
// lowercase hex digits in a path, which covers every runtime's naming:
//
//	12:memory:/docker/<id>                                  (Docker, cgroup v1)
//	0::/system.slice/docker-<id>.scope                      (Docker, cgroup v2, systemd)
//	.../kubepods/burstable/pod<uid>/<id>                    (Kubernetes, cgroupfs)
//	.../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//	.../containerd.service/kubepods-...-pod<uid>.slice:cri-containerd:<id>
//	.../crio-<id>.scope, .../libpod-<id>.scope, /ecs/<task>/<id>
//
// Pod uids (dashed or underscored) and 32-hex ECS task ids are not 64 hex
// runs, so they never match; a plain host ("0::/init.scope",
// "0::/user.slice/...") has none.
func containerIDFromCgroup(data []byte) string {
	for line := range bytes.Lines(data) {
		_, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		_, path, ok := bytes.Cut(rest, []byte(":"))
		if !ok {
			continue
		}
		if id := hexRun64(path); id != "" {
			return id
		}
	}
	return ""
}

// containerIDFromMountinfo returns the container id found in the contents of
// /proc/self/mountinfo, or "" when there is none. It looks only at each
// mount's root (the 4th field), where a container sees the files its runtime
// bind-mounts in, such as
//
//	/var/lib/docker/containers/<id>/hostname                  (Docker)
//	/docker/containers/<id>/hostname                          (Docker Desktop)
//	/var/lib/containers/storage/overlay-containers/<id>/userdata/hostname (Podman)
//
// The mount point (5th field) is ignored on purpose: a Docker host's own
// mountinfo lists /var/lib/docker/containers/<id>/mounts/shm as a mount
// point, and the host is not that container. Kubernetes under containerd
// mounts /etc/hostname from the pod sandbox's directory; the sandbox id is not
// this container's id, so it is not reported.
func containerIDFromMountinfo(data []byte) string {
	for line := range bytes.Lines(data) {
		root := mountinfoField(line, 3)
		if id := containerIDInPath(root); id != "" {
			return id
		}
	}
	return ""
}

// mountinfoField returns the n-th (0-based) space-separated field of a
// mountinfo line, or nil when the line is shorter.
func mountinfoField(line []byte, n int) []byte {
	for range n {
		_, rest, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			return nil
		}
		line = rest
	}
	field, _, _ := bytes.Cut(line, []byte(" "))
	return bytes.TrimRight(field, "\n")
}

// containerIDInPath returns <id> from the first "containers/<id>/" in path,
// where <id> is 64 hex digits; the prefix may be "/containers/" or Podman's
// "overlay-containers/".
func containerIDInPath(path []byte) string {
	const marker = "containers/"
	for {
		i := bytes.Index(path, []byte(marker))
		if i < 0 {
			return ""
		}
		path = path[i+len(marker):]
		if len(path) > containerIDLen && path[containerIDLen] == '/' && isHex(path[:containerIDLen]) {
			return string(path[:containerIDLen])
		}
	}
}

// hexRun64 returns the first maximal run of exactly 64 lowercase hex digits
// in b, or "".
func hexRun64(b []byte) string {
	for i := 0; i < len(b); {
		if !isHexDigit(b[i]) {
			i++
			continue
		}
		j := i
		for j < len(b) && isHexDigit(b[j]) {
			j++
		}
		if j-i == containerIDLen {
			return string(b[i:j])
		}
		i = j
	}
	return ""
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f'
}
