/* usage: make-testpics DIR PREFIX WIDTH HEIGHT COUNT -- writes the numbered test pictures of
 * tests/unit/video-testlib.c (picture i is a solid colour that identifies it). */
#include <stdio.h>
#include <stdlib.h>

#include "video-testlib.h"

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: make-testpics DIR PREFIX WIDTH HEIGHT COUNT\n");
		return 2;
	}
	testpic_write(argv[1], argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	return 0;
}
