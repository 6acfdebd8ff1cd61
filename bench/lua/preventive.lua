-- wrk -s bench/lua/preventive.lua: the "preventive" scenario (see common.lua and bench/README.md).
package.path = (os.getenv("BENCH_LUA_DIR") or "bench/lua") .. "/?.lua;" .. package.path
scenario = "preventive"
require("common")
