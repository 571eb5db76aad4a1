/* vireo-img's entry point; the tool itself is vireo_img_main(). */
#include "img-cli.h"

int main(int argc, char **argv)
{
	return vireo_img_main(argc, argv);
}
