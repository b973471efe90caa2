package fleet_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/botfleet/botfleet/fleet"
)

func ExampleReader_List() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	reader := fleet.NewReader(rdb, fleet.Options{})
	f, err := reader.List(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(fleet.SummaryLine(f.Summary)) // 3 workers: 2 alive (1 IDLE, 1 BUSY), 1 stale, 0 invalid
	for _, w := range f.Workers {
		if w.Health == fleet.Stale {
			fmt.Printf("%s: last beat %v ago\n", w.WorkerID, w.LastBeatAge)
		}
	}
	_ = fleet.WriteTable(os.Stdout, f, false)
}

func ExampleNewHandler() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	mux := http.NewServeMux()
	// /api/fleet, /api/fleet/targets (Prometheus HTTP SD), /api/fleet/events, ...
	api := fleet.NewHandler(fleet.NewReader(rdb, fleet.Options{}))
	mux.Handle(fleet.APIPrefix, api)
	mux.Handle(fleet.APIPrefix+"/", api)
	mux.Handle("GET /{$}", fleet.DashboardHandler())
	mux.Handle("GET /assets/", fleet.DashboardHandler())
	log.Fatal(http.ListenAndServe("127.0.0.1:9200", mux))
}
