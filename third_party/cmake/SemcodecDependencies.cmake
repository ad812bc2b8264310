# Finds every external dependency and exposes it as an imported target, so the
# rest of the build never deals with package-specific variables.
# Tested versions are listed in third_party/MANIFEST.md.
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# HDF5 C library (serial). Debian installs it under hdf5/serial.
find_package(HDF5 REQUIRED COMPONENTS C)
add_library(semcodec::hdf5 INTERFACE IMPORTED)
target_include_directories(semcodec::hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(semcodec::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(semcodec::hdf5 INTERFACE ${HDF5_DEFINITIONS})

# Image decoding for feature extraction: libjpeg-turbo's libjpeg API (Debian
# libjpeg62-turbo-dev) and libpng.
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)

# LibTorch: Debian's libtorch-dev 1.13 (CPU) or the official LibTorch 2.x (CUDA).
find_package(Torch REQUIRED)
add_library(semcodec::torch INTERFACE IMPORTED)
target_include_directories(semcodec::torch INTERFACE ${TORCH_INCLUDE_DIRS})
target_link_libraries(semcodec::torch INTERFACE ${TORCH_LIBRARIES} Threads::Threads)
message(STATUS "semcodec: LibTorch ${Torch_VERSION}")

if(SEMCODEC_BUILD_TESTS)
  find_package(Catch2 REQUIRED)
endif()
find_package(CLI11 REQUIRED)
