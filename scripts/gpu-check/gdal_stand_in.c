/* A stand-in for GDAL's libgdal.so.32, for the private prefix of scripts/gpu-check.sh.
 *
 * Debian's OpenCV imgcodecs links GDAL for GDAL-only raster formats; GDAL's own dependencies
 * are ~40 MB of .debs (poppler, proj, spatialite, netcdf, ...), more than the GPU check may
 * carry. greenfound reads JPEG and PNG only, and imgcodecs calls GDAL only when asked to
 * (IMREAD_LOAD_GDAL) apart from registering its drivers at start-up. So these are the
 * symbols imgcodecs 4.6 references, registration does nothing, opening finds nothing, and the
 * rest (unreachable without an open dataset) abort with a message. */
#include <stdio.h>
#include <stdlib.h>

static void unreachable(const char* symbol) {
  fprintf(stderr, "greenfound's GDAL stand-in: %s called; GDAL raster formats are not available here\n", symbol);
  abort();
}

void GDALAllRegister(void) {}
void* GDALOpen(const char* path, int access) { (void)path; (void)access; return NULL; }
void GDALClose(void* dataset) { (void)dataset; }
const char* GDALGetDataTypeName(int type) { (void)type; return "Unknown"; }

#define UNREACHABLE(name) void name(void) { unreachable(#name); }
UNREACHABLE(_ZN11GDALDataset13GetRasterBandEi)
UNREACHABLE(_ZN11GDALDataset14GetRasterCountEv)
UNREACHABLE(_ZN11GDALDataset14GetRasterXSizeEv)
UNREACHABLE(_ZN11GDALDataset14GetRasterYSizeEv)
UNREACHABLE(_ZN14GDALRasterBand17GetRasterDataTypeEv)
UNREACHABLE(_ZN14GDALRasterBand8GetXSizeEv)
UNREACHABLE(_ZN14GDALRasterBand8GetYSizeEv)
UNREACHABLE(_ZN14GDALRasterBand8RasterIOE10GDALRWFlagiiiiPvii12GDALDataTypexxP20GDALRasterIOExtraArg)
UNREACHABLE(_ZNK14GDALColorTable13GetColorEntryEi)
UNREACHABLE(_ZNK14GDALColorTable24GetPaletteInterpretationEv)
