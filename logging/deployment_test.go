package logging

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Container ids in the recorded samples. They are sha256 sums of made-up
// names, not ids of real containers.
const (
	idDockerV1        = "e0261c15f0f35274a6d6580ac0a5f7bdf9bf7b2ec766ebfa70db46e39007e76e"
	idDockerV2        = "fab347ddc6c3a0a814758baa1b75450ee37cb9423a7349154401d7843b2e7025"
	idKubepodsV1      = "3c0e601006d743c1163bfe864c4c7c4f8b764cec91c65a3385292e2565afcc98"
	idKubepodsSystemd = "6f40ef83969a2a307f7fc17b5f2bcd9da446483392c5e56e748cf046009551ec"
	idContainerd      = "725fbc3a9eaf71bc0e2f57470588ca84fb2e96b1884bed18a3b90ae0631dc500"
	idCRIO            = "29f576c17e9ae2c281cbcb362235de12b9d7d92e8f954d9a832f9295d778aafc"
	idPodmanCgroup    = "de4ceed6f7ec6ae5b8217010de7101c38c9c3e219b58452e80ec1b1d25b6225c"
	idECS             = "fceec58fb9fd6f9d709f7162600f70d31f98b22475390745d319fc5be0483381"
	idDockerDesktop   = "eeef5fe0c0000443b625d70a3df6d15d725b5f8accc531a6ece81e634004c73f"
	idPodmanMount     = "7e0712976c36e0b9e5a56aa19edfabdab2cd729b846c4b9e10d9760eb1370d24"
)

func TestContainerIDFromCgroup(t *testing.T) {
	tests := []struct {
		name string // file under testdata/cgroup
		want string
	}{
		{name: "docker-v1", want: idDockerV1},
		{name: "docker-v2", want: idDockerV2},
		{name: "docker-v2-cgroupns", want: ""}, // "0::/": the id is only in mountinfo
		{name: "kubepods-v1", want: idKubepodsV1},
		{name: "kubepods-systemd", want: idKubepodsSystemd},
		{name: "containerd", want: idContainerd},
		{name: "crio-v2", want: idCRIO},
		{name: "podman", want: idPodmanCgroup},
		{name: "podman-rootless", want: idPodmanCgroup},
		{name: "ecs", want: idECS},
		{name: "host-v1", want: ""},
		{name: "host-v2", want: ""},
		{name: "host-v2-init", want: ""},
		{name: "host-v2-service", want: ""},
		{name: "runtime-32hex", want: ""},
		{name: "empty", want: ""},
	}
	checkSamplesCovered(t, "testdata/cgroup", len(tests))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readSample(t, filepath.Join("testdata/cgroup", tt.name))
			if got := containerIDFromCgroup(data); got != tt.want {
				t.Errorf("containerIDFromCgroup(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestContainerIDFromMountinfo(t *testing.T) {
	tests := []struct {
		name string // file under testdata/mountinfo
		want string
	}{
		// The overlay upperdir holds a 64-hex layer id; it must not win.
		{name: "docker-v2", want: idDockerV2},
		{name: "docker-desktop", want: idDockerDesktop},
		{name: "podman", want: idPodmanMount},
		// /etc/hostname comes from the pod sandbox, whose id is not ours.
		{name: "kubernetes-containerd", want: ""},
		// A Docker host mounts /var/lib/docker/containers/<id>/mounts/shm.
		{name: "host-docker", want: ""},
		{name: "host", want: ""},
		{name: "empty", want: ""},
	}
	checkSamplesCovered(t, "testdata/mountinfo", len(tests))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readSample(t, filepath.Join("testdata/mountinfo", tt.name))
			if got := containerIDFromMountinfo(data); got != tt.want {
				t.Errorf("containerIDFromMountinfo(%s) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestContainerIDEdgeCases(t *testing.T) {
	hex63 := idDockerV1[:63]
	tests := []struct {
		name, cgroup, want string
	}{
		{name: "no trailing newline", cgroup: "0::/docker/" + idDockerV1, want: idDockerV1},
		{name: "CRLF", cgroup: "0::/docker/" + idDockerV1 + "\r\n", want: idDockerV1},
		{name: "63 hex", cgroup: "0::/docker/" + hex63 + "\n", want: ""},
		{name: "65 hex", cgroup: "0::/docker/" + idDockerV1 + "a\n", want: ""},
		{name: "uppercase hex", cgroup: "0::/docker/E" + idDockerV1[1:] + "\n", want: ""},
		{name: "no path field", cgroup: idDockerV1 + "\n", want: ""},
		{name: "garbage", cgroup: "\x00\xff::::\n\n:", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerIDFromCgroup([]byte(tt.cgroup)); got != tt.want {
				t.Errorf("containerIDFromCgroup(%q) = %q, want %q", tt.cgroup, got, tt.want)
			}
		})
	}
	for _, line := range []string{
		"1 2 3:4 /var/lib/docker/containers/" + idDockerV1, // no '/' after the id
		"1 2 3:4 /var/lib/docker/containers/" + hex63 + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw",
		"1 2 3:4",
		"",
	} {
		if got := containerIDFromMountinfo([]byte(line)); got != "" {
			t.Errorf("containerIDFromMountinfo(%q) = %q, want \"\"", line, got)
		}
	}
}

// fakeHost is a machine for detectDeployment: environment, files and hostname.
type fakeHost struct {
	env      map[string]string
	files    map[string]string
	hostname string
	hostErr  error
}

func (h fakeHost) detect() Deployment {
	readFile := func(name string) ([]byte, error) {
		data, ok := h.files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(data), nil
	}
	hostname := func() (string, error) { return h.hostname, h.hostErr }
	return detectDeployment(func(k string) string { return h.env[k] }, readFile, hostname)
}

func TestDetectDeployment(t *testing.T) {
	dockerV1 := string(readSample(t, "testdata/cgroup/docker-v1"))
	cgroupns := string(readSample(t, "testdata/cgroup/docker-v2-cgroupns"))
	dockerMounts := string(readSample(t, "testdata/mountinfo/docker-v2"))
	tests := []struct {
		name string
		host fakeHost
		want Deployment
	}{
		{
			name: "bare laptop",
			host: fakeHost{hostname: "laptop"},
			want: Deployment{Hostname: "laptop", Env: "local"},
		},
		{
			name: "hostname error",
			host: fakeHost{hostErr: errors.New("uname failed"), env: map[string]string{"DEPLOYMENT_ENV": "prod"}},
			want: Deployment{Env: "prod"},
		},
		{
			name: "env and region trimmed",
			host: fakeHost{hostname: "w1\n", env: map[string]string{"DEPLOYMENT_ENV": " staging ", "REGION": " eu-west "}},
			want: Deployment{Hostname: "w1", Env: "staging", Region: "eu-west"},
		},
		{
			name: "blank DEPLOYMENT_ENV is local",
			host: fakeHost{env: map[string]string{"DEPLOYMENT_ENV": "  "}},
			want: Deployment{Env: "local"},
		},
		{
			name: "FLY_REGION beats all",
			host: fakeHost{env: map[string]string{"FLY_REGION": "ams", "AWS_REGION": "eu-west-1", "GOOGLE_CLOUD_REGION": "europe-west4", "REGION": "eu"}},
			want: Deployment{Env: "local", Region: "ams"},
		},
		{
			name: "AWS_REGION beats Google and generic",
			host: fakeHost{env: map[string]string{"AWS_REGION": "eu-west-1", "GOOGLE_CLOUD_REGION": "europe-west4", "REGION": "eu"}},
			want: Deployment{Env: "local", Region: "eu-west-1"},
		},
		{
			name: "GOOGLE_CLOUD_REGION beats generic",
			host: fakeHost{env: map[string]string{"GOOGLE_CLOUD_REGION": "europe-west4", "REGION": "eu"}},
			want: Deployment{Env: "local", Region: "europe-west4"},
		},
		{
			name: "empty FLY_REGION falls through",
			host: fakeHost{env: map[string]string{"FLY_REGION": "", "REGION": "eu"}},
			want: Deployment{Env: "local", Region: "eu"},
		},
		{
			name: "container id from cgroup",
			host: fakeHost{hostname: "e0261c15f0f3", files: map[string]string{"/proc/self/cgroup": dockerV1, "/proc/self/mountinfo": dockerMounts}},
			want: Deployment{Hostname: "e0261c15f0f3", ContainerID: idDockerV1, Env: "local"},
		},
		{
			name: "container id from mountinfo under cgroupns",
			host: fakeHost{files: map[string]string{"/proc/self/cgroup": cgroupns, "/proc/self/mountinfo": dockerMounts}},
			want: Deployment{ContainerID: idDockerV2, Env: "local"},
		},
		{
			name: "no proc files",
			host: fakeHost{files: map[string]string{}},
			want: Deployment{Env: "local"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.host.detect(); got != tt.want {
				t.Errorf("detectDeployment() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDetectDeploymentReal runs against this machine: it must not fail and
// must agree with the pieces it is made of.
func TestDetectDeploymentReal(t *testing.T) {
	t.Setenv("DEPLOYMENT_ENV", "ci")
	d := DetectDeployment()
	if h, err := os.Hostname(); err == nil && d.Hostname != h {
		t.Errorf("Hostname = %q, want %q", d.Hostname, h)
	}
	if d.Env != "ci" {
		t.Errorf("Env = %q, want %q", d.Env, "ci")
	}
	if id := d.ContainerID; id != "" && (len(id) != 64 || !isHex([]byte(id))) {
		t.Errorf("ContainerID = %q, want 64 hex digits or empty", id)
	}
}

func TestDeploymentAttrs(t *testing.T) {
	tests := []struct {
		name string
		d    Deployment
		want []slog.Attr
	}{
		{name: "zero", d: Deployment{}, want: []slog.Attr{}},
		{
			name: "all",
			d:    Deployment{Hostname: "h", ContainerID: idDockerV1, Env: "prod", Region: "ams"},
			want: []slog.Attr{
				slog.String("hostname", "h"),
				slog.String("container_id", idDockerV1),
				slog.String("deployment_env", "prod"),
				slog.String("region", "ams"),
			},
		},
		{
			name: "empty fields left out",
			d:    Deployment{Hostname: "h", Env: "local"},
			want: []slog.Attr{slog.String("hostname", "h"), slog.String("deployment_env", "local")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Attrs()
			if !slices.EqualFunc(got, tt.want, slog.Attr.Equal) {
				t.Errorf("Attrs() = %v, want %v", got, tt.want)
			}
		})
	}
}

func readSample(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkSamplesCovered fails when a recorded sample has no row in its table,
// so a new sample cannot be added without saying what it should yield.
func checkSamplesCovered(t *testing.T, dir string, rows int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != rows {
		t.Errorf("%s holds %d samples but the table has %d rows", dir, len(entries), rows)
	}
}
