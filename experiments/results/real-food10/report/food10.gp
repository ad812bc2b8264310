set terminal pngcairo size 1150,600 enhanced font 'sans,11'
set output 'experiments/results/real-food10/report/food10.png'
set title 'Food-10, real CLIP ViT-B/32: top-1 (nearest class mean) vs rate' noenhanced
set xlabel 'rate (bits per image, as coded)' noenhanced
set ylabel 'top-1 accuracy, nearest class mean (%)' noenhanced
set grid
set key outside right top box noenhanced
set yrange [90:100]
set offsets graph 0.03, graph 0.03, 0, 0
plot 'experiments/results/real-food10/report/food10.dat' index 0 using 1:2 with linespoints lw 2 pt 5 title 'PQVAE-shared', \
     'experiments/results/real-food10/report/food10.dat' index 1 using 1:2 with linespoints lw 2 pt 6 title 'VQ-VAE k-means PQ', \
     'experiments/results/real-food10/report/food10.dat' index 2 using 1:2 with linespoints lw 2 pt 7 title 'Learned SQ', \
     'experiments/results/real-food10/report/food10.dat' index 3 using 1:2 with linespoints lw 2 pt 8 title 'FAISS PQ', \
     'experiments/results/real-food10/report/food10.dat' index 4 using 1:2 with linespoints lw 2 pt 9 title 'FAISS OPQ+PQ', \
     'experiments/results/real-food10/report/food10.dat' index 5 using 1:2 with linespoints lw 2 pt 10 title 'int4', \
     98.2 with lines dt 2 lw 2 lc rgb 'black' title 'Food-10 (ViT-B/32) upper bound (uncompressed) 98.20%'
