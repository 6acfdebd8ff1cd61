-- wrk -s bench/lua/curative.lua: the "curative" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "curative"
require("common")
