// reasonrt/export.h: the one export macro of the shared library.
//
// Everything in the library is hidden unless marked RRT_API. The build defines
// RRT_BUILDING_LIBRARY; users of the installed library see the default-visibility form.
#ifndef REASONRT_EXPORT_H_
#define REASONRT_EXPORT_H_

#if defined(_WIN32)
#if defined(RRT_BUILDING_LIBRARY)
#define RRT_API __declspec(dllexport)
#else
#define RRT_API __declspec(dllimport)
#endif
#else
#define RRT_API __attribute__((visibility("default")))
#endif

#endif  // REASONRT_EXPORT_H_
