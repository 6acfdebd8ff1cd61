-- wrk -s bench/lua/get.lua: the "get" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "get"
require("common")
