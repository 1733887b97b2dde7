return { name = "lib.pkg via init.lua" }
