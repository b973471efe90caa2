// Package deploy holds botfleet's deployment files, not Go code: the
// Dockerfile, the Docker Compose stack (redis, bot, workers, Prometheus,
// Alertmanager, Loki, Alloy, Grafana), the Alloy pipelines, Prometheus's
// configuration and alert rules, and Grafana's provisioning and dashboard.
// docs/deploy.md explains how to run them.
//
// The package's tests check those files with the real tools where they run
// here: promtool (Debian package prometheus) checks the Prometheus
// configuration, parses every PromQL expression of the dashboard and unit-tests
// the alerts; docker-compose (Debian package docker-compose) validates the
// compose file; the Dockerfile's go build command is run as written; and
// small checkers cover what has no tool here (Alloy's syntax, its stage.json
// applied to lines from the logging package, the dashboard's data sources and
// Loki labels).
package deploy
