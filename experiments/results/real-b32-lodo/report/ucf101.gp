set terminal pngcairo size 1150,600 enhanced font 'sans,11'
set output 'experiments/results/real-b32-lodo/report/ucf101.png'
set title 'UCF101 (held out): top-1 (NCM) vs coded bits' noenhanced
set xlabel 'rate (bits per image, as coded)' noenhanced
set ylabel 'top-1 accuracy, nearest class mean (%)' noenhanced
set grid
set key outside right top box noenhanced
set yrange [0:90]
set offsets graph 0.03, graph 0.03, 0, 0
plot 'experiments/results/real-b32-lodo/report/ucf101.dat' index 0 using 1:2 with linespoints lw 2 pt 5 title 'Adaptive KLT (ours)', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 1 using 1:2 with linespoints lw 2 pt 6 title 'FAISS PQ', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 2 using 1:2 with linespoints lw 2 pt 7 title 'FAISS OPQ+PQ', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 3 using 1:2 with linespoints lw 2 pt 8 title 'int4', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 4 using 1:2 with linespoints lw 2 pt 9 title 'Learned SQ', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 5 using 1:2 with linespoints lw 2 pt 10 title 'PQVAE-shared', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 6 using 1:2 with linespoints lw 2 pt 11 title 'PQVAE-shared (12 epochs)', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 7 using 1:2 with linespoints lw 2 pt 12 title 'VQ-VAE k-means PQ', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 8 using 1:2 with linespoints lw 2 pt 13 title 'FAISS RQ (beam 8)', \
     'experiments/results/real-b32-lodo/report/ucf101.dat' index 9 using 1:2 with linespoints lw 2 pt 14 title 'FAISS LSQ', \
     74.7819 with lines dt 2 lw 2 lc rgb 'black' title 'UCF101 (held out) upper bound (uncompressed) 74.78%'
