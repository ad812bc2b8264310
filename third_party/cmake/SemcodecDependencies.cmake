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

# FAISS (optional; Debian libfaiss-dev, a static library): the PQ / OPQ /
# residual-quantizer anchors of docs/baselines.md. Linked by plain paths, not
# an imported target, so the installed package needs nothing extra to find.
option(SEMCODEC_WITH_FAISS "Build the FAISS baseline quantizers when FAISS is found" ON)
set(SEMCODEC_HAVE_FAISS OFF)
if(SEMCODEC_WITH_FAISS)
  find_path(FAISS_INCLUDE_DIR faiss/IndexPQ.h)
  find_library(FAISS_LIBRARY faiss)
  find_package(OpenMP COMPONENTS CXX QUIET)
  find_package(BLAS QUIET)
  find_package(LAPACK QUIET)
  if(FAISS_INCLUDE_DIR AND FAISS_LIBRARY AND OpenMP_CXX_FOUND AND BLAS_FOUND AND LAPACK_FOUND)
    set(SEMCODEC_HAVE_FAISS ON)
    set(SEMCODEC_FAISS_LIBRARIES ${FAISS_LIBRARY} ${OpenMP_CXX_LIBRARIES} ${LAPACK_LIBRARIES} ${BLAS_LIBRARIES})
    message(STATUS "semcodec: FAISS baselines enabled (${FAISS_LIBRARY})")
  else()
    message(STATUS "semcodec: FAISS not found: the faiss_* methods are disabled (install libfaiss-dev)")
  endif()
endif()
