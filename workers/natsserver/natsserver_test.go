package natsserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/subs-engine/subs/workers/natsserver"
)

func mustStart(tb testing.TB, cfg natsserver.Config) *natsserver.Server {
	tb.Helper()
	srv, err := natsserver.Start(cfg)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

// A stream written through an in-process connection is there after a
// restart on the same store directory and port, over TCP.
func TestServer_InProcessJetStream_SurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := mustStart(t, natsserver.Config{StoreDir: dir, Port: -1})
	port := srv.Port()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Shutdown()

	srv = mustStart(t, natsserver.Config{StoreDir: dir, Port: port})
	if got := srv.Port(); got != port {
		t.Errorf("restarted on port %d, want %d", got, port)
	}
	nc, err = nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	stream, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("the stream did not survive the restart: %v", err)
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "t.x")
	if err != nil {
		t.Fatalf("the message did not survive the restart: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Errorf("data %q, want hello", msg.Data)
	}
}

// A taken port does not stop the server: it listens elsewhere and says so.
func TestServer_PortTaken_PicksAnother(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	srv := mustStart(t, natsserver.Config{StoreDir: t.TempDir(), Port: taken})
	if ok, asked := srv.PortTaken(); !ok || asked != taken {
		t.Errorf("PortTaken() = %v, %d; want true, %d", ok, asked, taken)
	}
	if srv.Port() == taken || srv.Port() == 0 {
		t.Errorf("listens on %d, want another port than %d", srv.Port(), taken)
	}
}

func TestStart_InvalidConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  natsserver.Config
	}{
		{"no store dir", natsserver.Config{}},
		{"port out of range", natsserver.Config{StoreDir: t.TempDir(), Port: 70000}},
		{"negative max store", natsserver.Config{StoreDir: t.TempDir(), MaxStore: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if srv, err := natsserver.Start(tt.cfg); err == nil {
				srv.Shutdown()
				t.Error("Start accepted an invalid config")
			}
		})
	}
}
