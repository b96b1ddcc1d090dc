package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ivrpay/ivrpay/payments/paymentstest"
	"github.com/ivrpay/ivrpay/sqlstore"
)

// builtBinary is the ivrpay binary the tests run, built once by the first
// test that asks for it; TestMain removes its directory.
var builtBinary struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildIvrpay returns the ivrpay binary, building it on the first call.
func buildIvrpay(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		// go test puts its own GOROOT/bin first on the PATH of the tests it runs.
		goBin, err := exec.LookPath("go")
		if err != nil {
			builtBinary.err = fmt.Errorf("the go command is not on PATH: %v", err)
			return
		}
		if builtBinary.dir, err = os.MkdirTemp("", "ivrpay-test-bin"); err != nil {
			builtBinary.err = err
			return
		}
		bin := filepath.Join(builtBinary.dir, "ivrpay")
		if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtBinary.path = bin
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

// binaryTest is how a test that runs the built binary begins: skipped under
// -short (why says what makes it slow), run in parallel. It returns the
// binary.
func binaryTest(t *testing.T, why string) string {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
	t.Parallel()
	return buildIvrpay(t)
}

// binaryTestOnEachEngine is binaryTest with test run on every engine, each a
// parallel subtest given an installation on a fresh database of its engine.
func binaryTestOnEachEngine(t *testing.T, why string, test func(t *testing.T, inst installation)) {
	t.Helper()
	bin := binaryTest(t, why)
	for _, engine := range paymentstest.Engines(t) {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			test(t, installationOn(t, bin, paymentstest.DSN(t, engine)))
		})
	}
}

// sharedPostgres returns a fresh PostgreSQL database for the processes of a
// test to share, and skips the test where there is none (under CI=true it
// fails instead): several processes share a database only on PostgreSQL.
func sharedPostgres(t *testing.T) string {
	t.Helper()
	if !slices.Contains(paymentstest.Engines(t), sqlstore.EnginePostgres) {
		t.Skip("several processes share a database only on PostgreSQL; set IVRPAY_TEST_POSTGRES")
	}
	return paymentstest.DSN(t, sqlstore.EnginePostgres)
}

// installation is the built binary with one database and one vault key
// file: every server a test starts of it shares both, as the processes of
// one deployment do, and a server started again finds what the last one
// left.
type installation struct{ bin, db, vaultKey string }

// installationOn is an installation of bin on the database db, with a vault
// key file the first server creates.
func installationOn(t *testing.T, bin, db string) installation {
	return installation{bin: bin, db: db, vaultKey: filepath.Join(t.TempDir(), "vault.key")}
}

// freshInstallation is an installation of bin on a new SQLite file.
func freshInstallation(t *testing.T, bin string) installation {
	return installationOn(t, bin, filepath.Join(t.TempDir(), "ivrpay.db"))
}

// spawn starts a server of inst on a loopback port of its own (with env and
// extra flags) without waiting for it to listen.
func (inst installation) spawn(t *testing.T, env []string, extra ...string) *serveProcess {
	t.Helper()
	return spawnServe(t, inst.bin, env, append([]string{"--addr", "127.0.0.1:0", "--db", inst.db, "--vault-key-file", inst.vaultKey}, extra...)...)
}

// admin runs `ivrpay admin` of inst in mode (sandbox or production) and
// returns its exit code, stdout and stderr.
func (inst installation) admin(t *testing.T, mode string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runBinary(t, inst.bin, append([]string{"admin", "--mode", mode, "--db", inst.db, "--vault-key-file", inst.vaultKey}, args...)...)
}

// serve starts a server of inst and waits until it listens.
func (inst installation) serve(t *testing.T, env []string, extra ...string) *serveProcess {
	t.Helper()
	return awaitListening(t, inst.spawn(t, env, extra...))
}

// runBinary runs `bin args…` to its end (killed after 30 s) and returns its
// exit code (-1 when it had to be killed), stdout and stderr.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return code, out.String(), errOut.String()
}

// serveProcess is one `ivrpay serve` process run from the built binary.
type serveProcess struct {
	cmd       *exec.Cmd
	baseURL   string
	listening chan string
	exited    chan struct{}

	mu     sync.Mutex
	stdout bytes.Buffer
	tail   []string
}

// Write collects the server's stdout (the sandbox bootstrap).
func (s *serveProcess) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.Write(p)
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(\S+)`)

// spawnServe starts `bin serve args…` with this environment less its IVRPAY_*
// variables plus env, without waiting for it to listen. It is killed at cleanup.
func spawnServe(t *testing.T, bin string, env []string, args ...string) *serveProcess {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVRPAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	s := &serveProcess{cmd: cmd, listening: make(chan string, 1), exited: make(chan struct{})}
	cmd.Stdout = s
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	read := make(chan struct{})
	go func() {
		// The server logs every request: read all of it, keep the tail.
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			// Kept before it is announced: a test that hears "listening"
			// reads the tail and must find the line there.
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 40 {
				s.tail = s.tail[len(s.tail)-40:]
			}
			s.mu.Unlock()
			// listeningLine also reads production's JSON log.
			if m := listeningLine.FindStringSubmatch(line); m != nil {
				select {
				case s.listening <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		<-read
		cmd.Wait()
		close(s.exited)
	}()
	return s
}

// awaitListening waits until s listens and sets its base URL.
func awaitListening(t *testing.T, s *serveProcess) *serveProcess {
	t.Helper()
	select {
	case addr := <-s.listening:
		s.baseURL = "http://" + addr
	case <-s.exited:
		t.Fatalf("ivrpay serve exited before listening:\n%s", s.logTail())
	case <-time.After(30 * time.Second):
		s.kill()
		t.Fatalf("ivrpay serve did not listen within 30s:\n%s", s.logTail())
	}
	return s
}

// kill sends SIGKILL and waits for the process to be gone (a no-op once it is).
func (s *serveProcess) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// bootstrap returns the value printed after label ("admin api_key",
// "merchant_id") by the sandbox bootstrap. Stdout and stderr are copied
// separately, so the bootstrap may arrive just after the "listening" line:
// wait for it.
func (s *serveProcess) bootstrap(t *testing.T, label string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s.mu.Lock()
		out := s.stdout.String()
		s.mu.Unlock()
		for _, line := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), label+" "); ok {
				return strings.Fields(rest)[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the bootstrap output:\n%s", label, out)
		}
	}
}

// sandboxKeys returns what the sandbox bootstrap printed: the admin key,
// the IVR key and the merchant's id.
func (s *serveProcess) sandboxKeys(t *testing.T) (admin, ivrKey, merchant string) {
	t.Helper()
	return s.bootstrap(t, "admin api_key"), s.bootstrap(t, "ivr api_key"), s.bootstrap(t, "merchant_id")
}

// stop sends SIGTERM and waits for the server to exit 0.
func (s *serveProcess) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.awaitExit0(t)
}

// awaitExit0 waits up to 40 s for a server sent SIGTERM to exit, and fails
// the test unless it exits 0.
func (s *serveProcess) awaitExit0(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("ivrpay serve exited %d after SIGTERM:\n%s", code, s.logTail())
		}
	case <-time.After(40 * time.Second):
		s.kill()
		t.Fatalf("ivrpay serve did not exit within 40s of SIGTERM:\n%s", s.logTail())
	}
}

func (s *serveProcess) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// serveInProcess runs `ivrpay serve` in this process on a fresh sandbox (with
// extra flags), waits until it listens, and stops it at cleanup. Its result
// answers baseURL and bootstrap like a serveProcess.
func serveInProcess(t *testing.T, extra ...string) *serveProcess {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serveProcess{exited: make(chan struct{})}
	var stderr paymentstest.LockedBuffer
	args := append([]string{"--addr", "127.0.0.1:0", "--mode", "sandbox", "--db", filepath.Join(dir, "ivrpay.db"),
		"--vault-key-file", filepath.Join(dir, "vault.key")}, extra...)
	go func() {
		defer close(s.exited)
		runServe(ctx, args, s, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listeningAddr.FindStringSubmatch(stderr.String()); m != nil {
			s.baseURL = "http://" + m[1]
			return s
		}
		select {
		case <-s.exited:
			t.Fatalf("serve exited before listening:\n%s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not listen:\n%s", stderr.String())
		}
	}
}
