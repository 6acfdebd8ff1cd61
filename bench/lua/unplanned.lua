-- wrk -s bench/lua/unplanned.lua: the "unplanned" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "unplanned"
require("common")
