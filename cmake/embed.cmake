# Writes OUT, a C file defining NAME (the bytes of IN, NUL-terminated) and NAME_len.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* Generated from ${IN} by cmake/embed.cmake. */\n#include <stddef.h>\nconst char ${NAME}[] = {\n${bytes}0};\nconst size_t ${NAME}_len = ${len};\n")
