package ddfake_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

func Example() {
	srv := ddfake.New(ddfake.WithAccounts(ddfake.Account{Name: "acme", APIKeys: []string{"key-1"}}))
	base, err := srv.Start("") // 127.0.0.1 on a free port
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	// A datadog-api-client-go client reaches it with server index 1 and the
	// variables {"protocol": "http", "name": strings.TrimPrefix(base, "http://")}.
	srv.SetFault(ddfake.Fault{Path: "/api/v2/logs", Status: http.StatusServiceUnavailable, Count: 1})
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/logs", strings.NewReader(`[{"message":"hello"}]`))
		req.Header.Set("DD-API-KEY", "key-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	fmt.Println(srv.LogCount("acme"), srv.Logs("acme")[0].Message)
	// Output:
	// 503
	// 202
	// 1 hello
}
